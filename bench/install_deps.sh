#!/usr/bin/env bash
# What the benchmarks need beyond scripts/packages.txt (Google Benchmark, curl), installed from
# Debian when missing, as scripts/setup.sh installs the rest.
set -euo pipefail
missing=()
for pkg in libbenchmark-dev curl; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
