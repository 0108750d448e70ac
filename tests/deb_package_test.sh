#!/usr/bin/env bash
# The .deb (cmake/EcmInstall.cmake): `cpack -G DEB` of the build into a temp dir, then its control
# data and contents checked with dpkg-deb, and the unpacked ecm run (--help, --check of the
# packaged config with its plugins dir pointed at the unpacked tree).
# Usage: deb_package_test.sh BUILD_DIR. CPACK (environment) chooses the cpack.
set -euo pipefail

build=${1:?usage: deb_package_test.sh BUILD_DIR}
cpack=${CPACK:-cpack}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ecm-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

echo "== cpack -G DEB"
if ! "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log" >&2
  echo "FAIL: cpack -G DEB failed" >&2
  exit 1
fi
deb=$(ls "$tmp"/out/ecm_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "FAIL: no ecm_*.deb in $(ls "$tmp/out")" >&2; exit 1; }

echo "== control: $(basename "$deb")"
dpkg-deb -f "$deb" Package | grep -qx ecm || fail "Package is not ecm"
[ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libstdc++6 libthrift libsqlite3 libarchive libssl libboost-filesystem; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
dpkg-deb -I "$deb" conffiles >"$tmp/conffiles" 2>/dev/null || fail "no conffiles in the package"
for f in /etc/ecm/ecm.toml /etc/ecm/plugins/shell.toml /etc/ecm/plugins/bml.toml; do
  grep -qx "$f" "$tmp/conffiles" || fail "$f is not a conffile: $(cat "$tmp/conffiles")"
done
for script in postinst prerm postrm; do
  dpkg-deb -I "$deb" "$script" >/dev/null 2>&1 || fail "no $script in the package"
done

echo "== contents"
dpkg-deb -c "$deb" >"$tmp/contents"
for f in ./usr/bin/ecm ./usr/bin/ecmctl ./usr/lib/ecm/plugins/shell.so \
  ./usr/lib/ecm/plugins/audit-log.so ./usr/lib/ecm/plugins/ecm_python_engine.py \
  ./etc/ecm/ecm.toml ./etc/ecm/plugins/python.toml ./usr/lib/systemd/system/ecm.service \
  ./usr/share/doc/ecm/README.md ./usr/include/ecm/sdk/sdk.hpp \
  ./usr/lib/cmake/EcmSdk/EcmSdkConfig.cmake; do
  grep -qE " $f\$" "$tmp/contents" || fail "$f is not in the package"
done
grep -E ' \./etc/ecm/ecm\.toml$' "$tmp/contents" | grep -q 'root/root' || fail "ecm.toml not owned by root"
grep -qE 'test-plugins|/swap\.so|rm-sim' "$tmp/contents" && fail "test plugins or tools packaged"

echo "== unpacked"
root=$tmp/root
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/ecm" --help >/dev/null || fail "the packaged ecm does not run"
"$root/usr/bin/ecmctl" --help >/dev/null || fail "the packaged ecmctl does not run"
grep -q '^KillMode=process$' "$root/usr/lib/systemd/system/ecm.service" || fail "unit: no KillMode=process"
grep -qE '^dir = "/usr/lib/ecm/plugins"' "$root/etc/ecm/ecm.toml" || fail "packaged ecm.toml: dir"
# The packaged config, its paths moved into the unpacked tree, passes --check.
sed -e "s|\"/usr/lib/ecm/plugins\"|\"$root/usr/lib/ecm/plugins\"|" \
  -e "s|\"/var/lib/ecm|\"$tmp/var/lib/ecm|" "$root/etc/ecm/ecm.toml" >"$root/etc/ecm/check.toml"
"$root/usr/bin/ecm" --check --config "$root/etc/ecm/check.toml" >"$tmp/check.log" 2>&1 ||
  fail "ecm --check of the packaged config: $(cat "$tmp/check.log")"
if file "$root/usr/bin/ecm" | grep -q 'not stripped'; then fail "usr/bin/ecm is not stripped"; fi

if [ "$failures" -ne 0 ]; then
  echo "deb_package_test: $failures failure(s)" >&2
  exit 1
fi
echo "deb_package_test: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB, $(wc -l <"$tmp/contents") entries)"
