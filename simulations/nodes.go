package simulations

// nodeSet is the node pool's allocatable resources left, first fit in
// node order, as the default scheduler's bin packing is in effect for
// pods of equal priority.
type nodeSet struct {
	pool    *NodePool
	freeCPU []int64
	freeMem []int64
	// coming is the number of nodes the cluster autoscaler is adding.
	coming int
}

func newNodes(np *NodePool) *nodeSet {
	ns := &nodeSet{pool: np}
	for k := 0; k < np.Count; k++ {
		ns.add()
	}
	return ns
}

func (ns *nodeSet) add() {
	ns.freeCPU = append(ns.freeCPU, ns.pool.CPUMilli)
	ns.freeMem = append(ns.freeMem, ns.pool.MemoryBytes)
}

// place reserves cpu and mem on the first node they fit on and returns
// it, or -1 when none has room.
func (ns *nodeSet) place(cpu, mem int64) int32 {
	for i := range ns.freeCPU {
		if ns.freeCPU[i] >= cpu && ns.freeMem[i] >= mem {
			ns.freeCPU[i] -= cpu
			ns.freeMem[i] -= mem
			return int32(i)
		}
	}
	return -1
}

func (ns *nodeSet) release(i int32, cpu, mem int64) {
	ns.freeCPU[i] += cpu
	ns.freeMem[i] += mem
}

// wanted is how many more nodes the pending requests need, beyond those
// coming, within the pool's maximum (a cluster autoscaler's estimate: the
// pending totals over one node's allocatable resources).
func (ns *nodeSet) wanted(cpu, mem int64) int {
	if cpu <= 0 && mem <= 0 {
		return 0
	}
	need := int((cpu + ns.pool.CPUMilli - 1) / ns.pool.CPUMilli)
	need = max(need, int((mem+ns.pool.MemoryBytes-1)/ns.pool.MemoryBytes), 1)
	room := ns.pool.MaxCount - len(ns.freeCPU) - ns.coming
	return max(0, min(need-ns.coming, room))
}
