#!/usr/bin/env bash
# Builds the fuzz targets (tests/fuzz/, clang + libFuzzer + ASan/UBSan) into build-fuzz/ and runs
# each for SECONDS (default 30) over its corpus in tests/fuzz/corpus/, both at once. Exits non-zero
# when a target finds anything (crash, sanitizer report, leak, allocation over the limit, slow
# unit); the input that did it is kept in build-fuzz/artifacts/.
#
# The repo's corpus is only read: new inputs go to a temp dir, removed at the end. To grow the
# committed corpus, --update-corpus merges into it the inputs of the run that reach new code
# (-merge=1); keep it under 300 files a target.
#
# Usage: scripts/fuzz.sh [SECONDS] [--update-corpus]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
corpus=$root/tests/fuzz/corpus

seconds=30
update=0
for arg in "$@"; do
  case $arg in
    --update-corpus) update=1 ;;
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [--update-corpus]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done

for tool in clang clang++ ld.lld; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$(nproc)"

# target:corpus dir
targets=(fuzz_launch_request:launch_request fuzz_config:config)
# The limits of every run: memory (a decoded message must not make the ECM allocate without
# bound), and 25 s for one input (a hang; the costliest record pattern the log reader accepts
# takes a few seconds under the sanitizers). The smaller ASan quarantine leaves room under the RSS
# limit.
limits=(-rss_limit_mb=512 -malloc_limit_mb=256 -timeout=25)
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/ecm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"

pids=()
for t in "${targets[@]}"; do
  name=${t%%:*} dir=${t#*:}
  mkdir -p "$work/$dir"
  # New inputs go to $work/$dir (the first dir); the repo's corpus is read only.
  dict=()
  [ -f "$root/tests/fuzz/$dir.dict" ] && dict=(-dict="$root/tests/fuzz/$dir.dict")
  # The targets' own temp dirs go under $work too (TMPDIR): removed even when a target crashes.
  TMPDIR=$work "$build/$name" "${limits[@]}" "${dict[@]}" -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" "$work/$dir" "$corpus/$dir" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
done

failed=0
i=0
for t in "${targets[@]}"; do
  name=${t%%:*}
  if wait "${pids[$i]}"; then status=ok; else status=FAILED; failed=1; fi
  i=$((i + 1))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$name.log")
  echo "fuzz: $name: $status, ${execs:-?} execs in ${seconds}s (${rate:-?}/s)"
  if [ "$status" = FAILED ]; then
    grep -v -e '^#[0-9]' -e '^Thrift: ' "$work/$name.log" | tail -60 >&2
    echo "fuzz: $name: the input is in $build/artifacts/ (run: $build/$name FILE)" >&2
  fi
done

if [ "$failed" -eq 0 ] && [ "$update" -eq 1 ]; then
  for t in "${targets[@]}"; do
    name=${t%%:*} dir=${t#*:}
    # New edges only (not new hit counts of known ones): the corpus stays small.
    TMPDIR=$work "$build/$name" "${limits[@]}" -merge=1 -use_counters=0 "$corpus/$dir" \
      "$work/$dir" >"$work/$name.merge.log" 2>&1
    echo "fuzz: $name: corpus/$dir has $(find "$corpus/$dir" -type f | wc -l) files"
  done
fi
exit "$failed"
