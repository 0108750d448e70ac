#!/usr/bin/env bash
# What the benchmarks need beyond scripts/packages.txt (Google Benchmark, curl, and supervisor: the
# peer of bench/supervisord_peer.py), installed from Debian when missing, as scripts/setup.sh
# installs the rest.
set -euo pipefail
missing=()
for pkg in libbenchmark-dev curl supervisor; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# Debian's supervisor package starts a system supervisord where an init system runs: the bench
# starts its own, and a second one would only take CPU from the measurements.
if [[ " ${missing[*]} " == *" supervisor "* ]] && command -v service >/dev/null; then
  $sudo service supervisor stop >/dev/null 2>&1 || true
fi
