#!/usr/bin/env bash
# The soak test (not in CI): builds soak_bench in Release into build-bench/ and runs the real
# daemon under launches, stops, engine crashes and ECM restarts (clean, kill -9, kill -9 during a
# burst of launches) for SECONDS (default 600), checking after every restart that no engine was
# lost, orphaned or counted twice. Prints the figures; exits non-zero on any violation.
# Usage: bench/soak.sh [SECONDS] [extra soak_bench args: --max-live N --seed N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
seconds=${1:-600}
shift || true
"$root/bench/install_deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DECM_BUILD_BENCH=ON \
  -DECM_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j 2 --target soak_bench
exec "$build/bin/soak_bench" --seconds "$seconds" "$@"
