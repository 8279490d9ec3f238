# Benchmarks. Included by the root Makefile (include mk/*.mk). Not part of make test.
#
#   make bench                         every path against its floor, Markdown tables on stdout
#   make bench BENCH_DURATION=20s      longer runs (each path and its floor, by turns)
#   make bench BENCH_PPROF=prof        also a CPU profile of each service per path, in prof/
#
# Settings (see `cd e2e/bench && go run . -h`): BENCH_DURATION (8s), BENCH_WARMUP (1s),
# BENCH_CONCURRENCY (16), BENCH_ROUNDS (4), BENCH_BCRYPT_COST (10), BENCH_BIG_TASKS (1000000),
# BENCH_DIR (a new temporary folder), BENCH_OUT (also write the tables to this file).

BENCH_PPROF ?=

.PHONY: bench

bench: ## load each public path against its floor (vegeta); Markdown tables (see BENCHMARKS.md)
	cd e2e/bench && BENCH_PPROF=$(if $(BENCH_PPROF),$(abspath $(BENCH_PPROF))) \
		BENCH_OUT=$(if $(BENCH_OUT),$(abspath $(BENCH_OUT))) $(GO) run .
