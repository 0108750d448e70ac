#!/usr/bin/env bash
# The SDK as an engine team gets it: `cmake --install` of the ECM build into a temp prefix, then
# examples/out-of-tree-plugin configured against that prefix alone (find_package(EcmSdk 1.3),
# ecm_sdk_add_plugin) and built. Checks the installed headers (self-contained: nothing outside
# ecm/sdk, std and Boost) and the plugin (hello_listener.so, its exported descriptor, no
# STB_GNU_UNIQUE symbol). Usage: sdk_install_test.sh BUILD_DIR SOURCE_DIR
# CMAKE and CXX (environment) choose the cmake and the compiler; CTest sets both to the ECM's own.
set -euo pipefail

build=${1:?usage: sdk_install_test.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: sdk_install_test.sh BUILD_DIR SOURCE_DIR}
cmake=${CMAKE:-cmake}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ecm-sdk-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

echo "== cmake --install $build --prefix $prefix"
if ! "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  echo "FAIL: cmake --install failed (is the whole project built? cmake --build $build)" >&2
  exit 1
fi

echo "== installed layout"
for f in include/ecm/sdk/sdk.hpp include/ecm/sdk/version.hpp include/ecm/sdk/event.hpp \
  include/ecm/sdk/listener.hpp lib/cmake/EcmSdk/EcmSdkConfig.cmake \
  lib/cmake/EcmSdk/EcmSdkConfigVersion.cmake lib/cmake/EcmSdk/EcmSdkTargets.cmake \
  lib/cmake/EcmSdk/EcmSdkPlugin.cmake; do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
# Every SDK header of the source tree is installed, and nothing else lands in include/.
for h in "$src"/core/include/ecm/sdk/*.hpp; do
  [ -f "$prefix/include/ecm/sdk/$(basename "$h")" ] || fail "$(basename "$h") is not installed"
done
extra=$(cd "$prefix/include" && find . -type f ! -path './ecm/sdk/*.hpp')
[ -z "$extra" ] || fail "unexpected files under include/: $extra"

echo "== the headers include only ecm/sdk, the standard library and Boost"
for h in "$prefix"/include/ecm/sdk/*.hpp; do
  while IFS= read -r line; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$line")
    case $inc in
      ecm/sdk/*.hpp)
        [ -f "$prefix/include/$inc" ] || fail "$(basename "$h") includes $inc, which is not installed" ;;
      boost/*) ;;
      */* | *.h | *.hpp) fail "$(basename "$h") includes <$inc>: not ecm/sdk, std or Boost" ;;
      *) ;;  # a standard header: <string>, <cstdint>, ...
    esac
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$h")
done
# Each header compiles on its own from the installed tree.
cxx=${CXX:-c++}
for h in "$prefix"/include/ecm/sdk/*.hpp; do
  inc=ecm/sdk/$(basename "$h")
  echo "#include <$inc>" | "$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror \
    -I"$prefix/include" -x c++ - 2>"$tmp/header.log" ||
    fail "<$inc> does not compile on its own: $(head -5 "$tmp/header.log")"
done

echo "== the out-of-tree example against the installed package only"
ex=$tmp/example-build
if ! "$cmake" -S "$src/examples/out-of-tree-plugin" -B "$ex" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/configure.log" 2>&1; then
  cat "$tmp/configure.log" >&2
  echo "FAIL: configuring examples/out-of-tree-plugin against $prefix failed" >&2
  exit 1
fi
grep -q "EcmSdk_DIR:PATH=$prefix/lib/cmake/EcmSdk" "$ex/CMakeCache.txt" ||
  fail "find_package(EcmSdk) did not find the installed package: $(grep EcmSdk_DIR "$ex/CMakeCache.txt")"
if ! "$cmake" --build "$ex" --verbose >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log" >&2
  echo "FAIL: building examples/out-of-tree-plugin failed" >&2
  exit 1
fi
# The compile line has the flags every plugin needs, and the headers come from the prefix.
compile=$(grep -E -- '-c [^ ]*hello_listener\.cpp' "$tmp/build.log" || true)
for flag in -fvisibility=hidden -fvisibility-inlines-hidden "-std=c++20" -fPIC; do
  grep -q -- "$flag" <<<"$compile" || fail "the compile line lacks $flag: $compile"
done
if grep -h 'set(CMAKE_CXX_COMPILER_ID "GNU")' "$ex"/CMakeFiles/*/CMakeCXXCompiler.cmake >/dev/null; then
  grep -q -- -fno-gnu-unique <<<"$compile" || fail "the compile line lacks -fno-gnu-unique: $compile"
fi
grep -q -- "$prefix/include" <<<"$compile" || fail "the headers do not come from $prefix/include"
grep -q -- "$src/core/include" <<<"$compile" && fail "the example compiled against the source tree"

# (grep without -q after a pipe: an early exit of grep would fail the pipe under pipefail)
so=$ex/hello_listener.so
if [ ! -f "$so" ]; then
  fail "hello_listener.so was not built: $(ls "$ex")"
else
  nm -D --defined-only "$so" | grep -w ecm_plugin_descriptor >/dev/null ||
    fail "nm -D --defined-only shows no ecm_plugin_descriptor"
  unique=$(readelf -W --dyn-syms "$so" | grep -w UNIQUE || true)
  [ -z "$unique" ] || fail "STB_GNU_UNIQUE symbols (the library could never be unloaded): $unique"
  strings "$so" | grep -x hello_listener >/dev/null || fail "the descriptor's name is not in the library"
fi

if [ "$failures" -ne 0 ]; then
  echo "sdk_install_test: $failures failure(s)" >&2
  exit 1
fi
echo "sdk_install_test: ok ($(basename "$so"), $(ls "$prefix/include/ecm/sdk" | wc -l) headers)"
