#!/usr/bin/env bash
# Builds the benchmarks in Release into build-bench/, runs them and prints a table of the figures
# against their targets. Usage: bench/run.sh [JOBS]   (default 2: the build shares the machine)
#
# To add a benchmark: add its target to bench/CMakeLists.txt and to BENCH_TARGETS, run it in a
# "run" step below, and add one `figure` line per number to the table step (`swap_figure` for
# swap_under_load_bench, which is not a Google Benchmark and writes its own JSON).
#
# SWAP_BENCH_ARGS overrides swap_under_load_bench's arguments (default below). The script exits
# non-zero when a benchmark fails (swap_under_load_bench: any failed launch, stop or swap), after
# printing the table; a missed target is shown in the table only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
out="$build/bench-results"
jobs=${1:-2}
BENCH_TARGETS=(event_bus_bench swap_under_load_bench)
# 2000 launches and 100 swaps per phase (one swap per 20 launches, as the defaults of 400 and 20),
# in 5 alternating rounds: p99 over 2000 launches, and a neighbour's load on this shared machine
# falls on both phases alike.
read -r -a swap_args <<<"${SWAP_BENCH_ARGS:---launches 2000 --swaps 100 --rounds 5 --threads 4}"

# 0. Google Benchmark (not in scripts/packages.txt): installed when missing, as scripts/setup.sh
# installs the rest.
if ! dpkg-query -W -f='${Status}' libbenchmark-dev 2>/dev/null | grep -q 'install ok installed'; then
  echo "== installing libbenchmark-dev"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    libbenchmark-dev >/dev/null
fi

# 1. Configure (Release, benchmarks on, tests off). -Wno-restrict: GCC 12 at -O3 warns falsely
# (-Wrestrict, GCC bug 105329) in std::string code inlined into host/ and the swap test plugin,
# which -Werror turns into errors; the project's own builds (-O2) do not see it.
echo "== configure ($build, Release)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DECM_BUILD_BENCH=ON \
  -DECM_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS=-Wno-restrict >/dev/null

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
# swap_under_load_bench drives the real daemon (a plain main()); its figures go to its own JSON.
echo "== run swap_under_load_bench ${swap_args[*]}"
status=0
rm -f "$out/swap_under_load_bench.json"  # no stale figures when it fails before writing them
"$build/bin/swap_under_load_bench" "${swap_args[@]}" --json "$out/swap_under_load_bench.json" ||
  status=$?

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

# swap_figure KEY LABEL UNIT TARGET: one line of the table from swap_under_load_bench's JSON; KEY
# is a dotted path into it (swapping.p99_ms), TARGET as figure's ("<=2.0") or empty.
swap_figure() {
  python3 - "$out/swap_under_load_bench.json" "$1" "$2" "$3" "$4" <<'PY'
import json, sys
path, key, label, unit, target = sys.argv[1:]
value = json.load(open(path))
for part in key.split("."):
    value = value[part]
if value is None:
    print(f"{label}: none")
    sys.exit(0)
note = ""
if target:
    op, limit = target[:2], float(target[2:])
    ok = value >= limit if op == ">=" else value <= limit
    note = f"  (target {op} {target[2:]}{' ' + unit if unit else ''}{'' if ok else ': MISSED'})"
text = f"{value:,}" if isinstance(value, int) else f"{value:,.3f}".rstrip("0").rstrip(".")
print(f"{label}: {text}{' ' + unit if unit else ''}{note}")
PY
}

echo
echo "== figures: swap under load (${swap_args[*]})"
if [ -f "$out/swap_under_load_bench.json" ]; then
  swap_figure baseline.p50_ms "launch latency without swaps, p50" "ms" ""
  swap_figure baseline.p99_ms "launch latency without swaps, p99" "ms" ""
  swap_figure baseline.max_ms "launch latency without swaps, max" "ms" ""
  swap_figure swapping.p50_ms "launch latency while swapping, p50" "ms" ""
  swap_figure swapping.p99_ms "launch latency while swapping, p99" "ms" ""
  swap_figure swapping.max_ms "launch latency while swapping, max" "ms" ""
  swap_figure p99_ratio "launch latency p99, swapping / without" "" "<=2.0"
  swap_figure swap.p50_ms "swap (reloadPlugin RPC), p50" "ms" ""
  swap_figure swap.max_ms "swap (reloadPlugin RPC), max" "ms" ""
  swap_figure swap.count "swaps" "" ""
  swap_figure baseline.count "launches without swaps" "" ""
  swap_figure swapping.count "launches while swapping" "" ""
  swap_figure failures "failed launches, stops and swaps" "" "<=0"
else
  echo "no result: swap_under_load_bench wrote no $out/swap_under_load_bench.json"
fi
if [ "$status" -ne 0 ]; then
  echo "swap_under_load_bench failed (exit $status): see its errors above" >&2
fi
exit "$status"
