#!/usr/bin/env bash
# Builds the benchmarks in Release into build-bench/, runs them and prints a table of the figures
# against their targets. Usage: bench/run.sh [JOBS]   (default 2: the build shares the machine)
#
# The launch comparison (issue 8): N engines of /bin/sleep 1000 (N = 200 and 1000) launched and
# stopped by the floor (launch_floor: posix_spawn alone), the ECM (launch_bench: its Thrift API)
# and the peer (supervisord_peer.py: supervisord over XML-RPC), LAUNCH_ROUNDS rounds (default 3)
# taken in turn, medians in the table (bench/launch_table.py). LAUNCH_NS overrides the Ns ("200
# 1000"), IDLE_SECONDS the time the ECM's CPU is measured with the largest N idle (default 60).
#
# To add a benchmark: add its target to bench/CMakeLists.txt and to BENCH_TARGETS, run it in a
# "run" step below, and add one `figure` line per number to the table step (`json_figure` for the
# plain main() benchmarks, swap_under_load_bench and localization_bench, which are not Google
# Benchmarks and write their own JSON).
#
# SWAP_BENCH_ARGS and LOCALIZATION_BENCH_ARGS override the arguments of swap_under_load_bench and
# localization_bench (defaults below). The script exits non-zero when a benchmark fails
# (swap_under_load_bench: any failed launch, stop or swap; localization_bench: any failed or wrong
# fetch), after printing the table; a missed target is shown in the table only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
out="$build/bench-results"
jobs=${1:-2}
BENCH_TARGETS=(event_bus_bench launch_path_bench launch_floor launch_bench swap_under_load_bench
  localization_bench)
read -r -a launch_ns <<<"${LAUNCH_NS:-200 1000}"
launch_rounds=${LAUNCH_ROUNDS:-3}
idle_seconds=${IDLE_SECONDS:-60}
# 2000 launches and 100 swaps per phase (one swap per 20 launches, as the defaults of 400 and 20),
# in 5 alternating rounds: p99 over 2000 launches, and a neighbour's load on this shared machine
# falls on both phases alike.
read -r -a swap_args <<<"${SWAP_BENCH_ARGS:---launches 2000 --swaps 100 --rounds 5 --threads 4}"
# A 200 MiB resource from loopback, 5 cold rounds (curl and the ECM alternating), 1000 cache hits.
read -r -a loc_args <<<"${LOCALIZATION_BENCH_ARGS:---size-mib 200 --reps 5 --hits 1000}"

# 0. Google Benchmark, curl (localization_bench's reference client) and supervisor (the launch
# peer), when missing.
"$root/bench/install_deps.sh"

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

# The launch comparison. Its files stay until every launch run is done (ECM_BENCH_KEEP_FILES): on
# ext4 without a journal, creating files right after thousands were deleted nearby is several
# times slower, so one run's clean-up would slow the next one's work dirs and logs.
launch_tmp="$build/bench-tmp"
rm -rf "$launch_tmp"
mkdir -p "$launch_tmp"
rm -f "$out"/launch-*.json
# The micro-benchmarks of the launch path first, in the same dir: their work dirs stay too.
TMPDIR="$launch_tmp" ECM_BENCH_KEEP_FILES=1 run launch_path_bench
launch_status=0
for n in "${launch_ns[@]}"; do
  for round in $(seq 1 "$launch_rounds"); do
    idle=0  # the ECM's idle CPU: measured once, with the largest N
    [ "$n" = "${launch_ns[-1]}" ] && [ "$round" = 1 ] && idle=$idle_seconds
    echo "== launch N=$n round $round/$launch_rounds: floor, ECM (idle CPU over ${idle}s), supervisord"
    export TMPDIR="$launch_tmp" ECM_BENCH_KEEP_FILES=1
    "$build/bin/launch_floor" --n "$n" --json "$out/launch-floor-$n-$round.json" ||
      launch_status=$?
    "$build/bin/launch_bench" --n "$n" --idle-seconds "$idle" \
      --json "$out/launch-ecm-$n-$round.json" || launch_status=$?
    python3 "$root/bench/supervisord_peer.py" --n "$n" \
      --json "$out/launch-supervisord-$n-$round.json" || launch_status=$?
    unset TMPDIR ECM_BENCH_KEEP_FILES
  done
done
rm -rf "$launch_tmp"

# swap_under_load_bench drives the real daemon (a plain main()); its figures go to its own JSON.
echo "== run swap_under_load_bench ${swap_args[*]}"
status=0
rm -f "$out/swap_under_load_bench.json"  # no stale figures when it fails before writing them
"$build/bin/swap_under_load_bench" "${swap_args[@]}" --json "$out/swap_under_load_bench.json" ||
  status=$?
# localization_bench: curl and the real host code (http.so, the cache, the localization service)
# fetching one file from a loopback server; its figures go to its own JSON.
echo "== run localization_bench ${loc_args[*]}"
loc_status=0
rm -f "$out/localization_bench.json"
"$build/bin/localization_bench" "${loc_args[@]}" --json "$out/localization_bench.json" ||
  loc_status=$?

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
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -sr)"
echo
python3 "$root/bench/launch_table.py" "$out"
echo
echo "== figures (medians of 3 runs)"
figure launch_path_bench BM_PluginCallRoundTrip real_time \
  "launch path: one trip to the plugin call runner" "ns" ""
figure launch_path_bench BM_StateStorePut real_time \
  "launch path: one state store write (SQLite WAL)" "ns" ""
figure launch_path_bench BM_WorkDirCreate real_time \
  "launch path: work dir, logs dir and two log files" "ns" ""
figure launch_path_bench BM_ListEngines real_time \
  "listEngineConns of 1,000 less the socket (snapshot, convert, serialize)" "us" ""
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

# json_figure BINARY KEY LABEL UNIT TARGET: one line of the table from the JSON a plain main()
# benchmark wrote ($out/BINARY.json); KEY is a dotted path into it (swapping.p99_ms), TARGET an
# operator (>=, <=, >, <) and a number ("<=2.0") or empty.
json_figure() {
  python3 - "$out/$1.json" "$2" "$3" "$4" "$5" <<'PY'
import json, operator, re, sys
path, key, label, unit, target = sys.argv[1:]
value = json.load(open(path))
for part in key.split("."):
    value = value[part]
if value is None:
    print(f"{label}: none")
    sys.exit(0)
note = ""
if target:
    op, limit = re.fullmatch(r"(>=|<=|>|<)(.+)", target).groups()
    ops = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
    ok = ops[op](value, float(limit))
    note = f"  (target {op} {limit}{' ' + unit if unit else ''}{'' if ok else ': MISSED'})"
text = f"{value:,}" if isinstance(value, int) else f"{value:,.3f}".rstrip("0").rstrip(".")
print(f"{label}: {text}{' ' + unit if unit else ''}{note}")
PY
}
swap_figure() { json_figure swap_under_load_bench "$@"; }
loc_figure() { json_figure localization_bench "$@"; }

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

echo
echo "== figures: localization (${loc_args[*]})"
if [ -f "$out/localization_bench.json" ]; then
  loc_figure curl.median_mb_s "curl -o FILE, median" "MB/s" ""
  loc_figure curl.best_mb_s "curl -o FILE, best" "MB/s" ""
  loc_figure ecm.median_mb_s "ECM localize() cold (fetch, sha256, cache, link), median" "MB/s" ""
  loc_figure ecm.best_mb_s "ECM localize() cold, best" "MB/s" ""
  loc_figure ratio "cold localization speed, ECM / curl (medians)" "" ">=0.70"
  loc_figure curl_devnull.median_mb_s "curl -o /dev/null (server ceiling), median" "MB/s" ""
  loc_figure cache_hit.p50_us "cache hit (localize()), p50" "µs" "<1000"
  loc_figure cache_hit.p99_us "cache hit (localize()), p99" "µs" ""
  loc_figure stages_ms.fetch "cold stages: plugin fetch (HTTP, write, fsync)" "ms" ""
  loc_figure stages_ms.sha256_file "cold stages: sha256 of the fetched file" "ms" ""
  loc_figure stages_ms.insert_link "cold stages: cache insert and link" "ms" ""
  loc_figure failures "failed or wrong fetches" "" "<=0"
else
  echo "no result: localization_bench wrote no $out/localization_bench.json"
fi
if [ "$status" -ne 0 ]; then
  echo "swap_under_load_bench failed (exit $status): see its errors above" >&2
fi
if [ "$loc_status" -ne 0 ]; then
  echo "localization_bench failed (exit $loc_status): see its errors above" >&2
  [ "$status" -ne 0 ] || status=$loc_status
fi
if [ "$launch_status" -ne 0 ]; then
  echo "a launch benchmark failed (exit $launch_status): see its errors above" >&2
  [ "$status" -ne 0 ] || status=$launch_status
fi
exit "$status"
