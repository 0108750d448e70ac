#!/usr/bin/env bash
# Sets up (installs what is missing, builds), then runs the ECM in the foreground with
# conf/ecm.toml on 127.0.0.1:9101. Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" "$root/build"
exec "$root/build/bin/ecm" --config "$root/conf/ecm.toml" "$@"
