# Simulations: score elmascale against HPA-style, KEDA-style and static
# baselines and the reference (the oracle policy) on the simulated
# ELMA365 cluster; the benchmarks time a day and a week on one core.
#   make bench-sim   run every shipped scenario under every policy for
#                    SIM_SEEDS seeds and rewrite BENCHMARKS.md, with the
#                    plots under docs/benchmarks/
#   make test-sim    the simulator's tests (golden scores, properties)
SIM_SEEDS ?= 3

.PHONY: bench-sim test-sim

# The runs are timed on one core (GOMAXPROCS=1), as the benchmarks are
# (-cpu 1), so the speed figures do not borrow a second core for the GC.
bench-sim:
	GOMAXPROCS=1 $(GO) run ./cmd/elmascale simulate --scenario all --policy all --seeds $(SIM_SEEDS) \
		--out docs/benchmarks --benchmarks BENCHMARKS.md
	$(GO) test -run '^$$' -bench 'BenchmarkElma365(Day|Week)' -benchtime 1x -cpu 1 ./simulations/

test-sim:
	$(GO) test -count=1 -p 1 ./simulations/...
