#!/usr/bin/env bash
# Builds the benchmarks in Release into build-bench/, runs them and prints a table of the figures
# against their targets. Usage: bench/run.sh [JOBS]   (default 2: the build shares the machine)
#
# To add a benchmark: add its target to bench/CMakeLists.txt and to BENCH_TARGETS, run it in a
# "run" step below, and add one `figure` line per number to the table step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
out="$build/bench-results"
jobs=${1:-2}
BENCH_TARGETS=(event_bus_bench)

# 1. Configure (Release, benchmarks on, tests off).
echo "== configure ($build, Release)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DECM_BUILD_BENCH=ON \
  -DECM_BUILD_TESTS=OFF >/dev/null

# 2. Build the benchmark targets only.
echo "== build ${BENCH_TARGETS[*]}"
for t in "${BENCH_TARGETS[@]}"; do
  cmake --build "$build" -j "$jobs" --target "$t"
done
mkdir -p "$out"

# run BINARY: runs it (3 repetitions, medians) with its console output, JSON into $out/BINARY.json.
run() {
  echo "== run $1"
  "$build/bin/$1" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/$1.json" --benchmark_out_format=json
}

# 3. Run.
run event_bus_bench

# figure BINARY BENCHMARK FIELD LABEL UNIT TARGET: one line of the table, from the median of
# FIELD (items_per_second, real_time, or a counter) of BENCHMARK in BINARY's JSON.
figure() {
  python3 - "$out/$1.json" "$2" "$3" "$4" "$5" "$6" <<'PY'
import json, sys
path, name, field, label, unit, target = sys.argv[1:]
runs = json.load(open(path))["benchmarks"]
hits = [b for b in runs if b.get("run_name", b["name"]).split("/")[0] == name
        and b.get("aggregate_name", "median") == "median"]
if not hits:
    print(f"{label}: no result for {name}")
    sys.exit(0)
value = hits[0][field]
note = ""
if target:
    op, limit = target[:2], float(target[2:])
    ok = value >= limit if op == ">=" else value <= limit
    note = f"  (target {op} {limit:,.0f}{' ' + unit if unit else ''}{'' if ok else ': MISSED'})"
print(f"{label}: {value:,.0f} {unit}{note}")
PY
}

# 4. The table.
echo
echo "== figures (medians of 3 runs)"
figure event_bus_bench BM_PublishToOneNoopListener items_per_second \
  "event bus, 1 no-op listener" "events/s" ">=1000000"
figure event_bus_bench BM_PublishToFourNoopListeners items_per_second \
  "event bus, 4 no-op listeners" "events/s" ""
figure event_bus_bench BM_PublishToFourNoopListeners deliveries/s \
  "event bus, 4 no-op listeners, deliveries" "deliveries/s" ""
figure event_bus_bench BM_PublishToOneNoopListener dropped \
  "event bus, 1 no-op listener, dropped" "events" ""
figure event_bus_bench BM_PublishToFourNoopListeners dropped \
  "event bus, 4 no-op listeners, dropped" "events" ""
