package config

// FindCycle returns a cycle of a directed graph as a path of names whose
// first and last are the same, or nil. Node i is names[i]; edges(i) lists
// the names it points to; names not in the graph are ignored.
func FindCycle(names []string, edges func(i int) []string) []string {
	idx := make(map[string]int, len(names))
	for i, n := range names {
		idx[n] = i
	}
	state := make([]uint8, len(names)) // 0 new, 1 on the path, 2 done
	var path, found []string
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		path = append(path, names[i])
		for _, d := range edges(i) {
			j, ok := idx[d]
			switch {
			case !ok:
			case state[j] == 1:
				for k, n := range path {
					if n == d {
						found = append(append([]string(nil), path[k:]...), d)
						return true
					}
				}
			case state[j] == 0 && visit(j):
				return true
			}
		}
		path = path[:len(path)-1]
		state[i] = 2
		return false
	}
	for i := range names {
		if state[i] == 0 && visit(i) {
			return found
		}
	}
	return nil
}
