#!/usr/bin/env bash
# The ECM as an administrator installs it (cmake/EcmInstall.cmake): `cmake --install` of the build
# into a temp prefix, then the layout checked and the installed ecm run with its installed config:
#  * bin/ecm and bin/ecmctl run (--help); no test tool (rm-sim) installed
#  * lib/ecm/plugins holds exactly the shipped plugins, and ecm_python_engine.py
#  * etc/ecm/ecm.toml names this prefix's plugin dir and var/lib/ecm; `ecm --check` passes; a copy
#    of it on free ports starts, loads its plugins from the prefix, answers ecmctl, and stops
#  * etc/ecm/plugins/NAME.toml for each plugin; python.toml's engine_program is the installed one
#  * lib/systemd/system/ecm.service with KillMode=process and this prefix's ExecStart
#  * share/doc/ecm/README.md and SDK.md
#  * a second install keeps an edited config (the new one beside it as .new)
#  * DESTDIR=D --prefix /usr (what the .deb holds): /etc/ecm, /var/lib/ecm, /usr/lib/ecm/plugins
# Usage: install_layout_test.sh BUILD_DIR. CMAKE (environment) chooses the cmake.
set -euo pipefail

build=${1:?usage: install_layout_test.sh BUILD_DIR}
cmake=${CMAKE:-cmake}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ecm-install-layout.XXXXXX")
ecm_pid=
cleanup() {
  if [ -n "$ecm_pid" ]; then kill "$ecm_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
p=$tmp/prefix
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
has_line() {  # FILE LINE: LINE is one whole line of FILE
  grep -qxF -- "$2" "$1" || fail "$1 has no line '$2'"
}
shipped="audit-log bml file http python shell"

echo "== cmake --install $build --prefix $p"
if ! "$cmake" --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  echo "FAIL: cmake --install failed (is the whole project built? cmake --build $build)" >&2
  exit 1
fi

echo "== binaries"
for b in ecm ecmctl; do
  if [ ! -x "$p/bin/$b" ]; then
    fail "bin/$b is not installed"
  elif ! "$p/bin/$b" --help >"$tmp/$b.help" 2>&1; then
    fail "bin/$b --help failed: $(cat "$tmp/$b.help")"
  fi
done
grep -q -- --config "$tmp/ecm.help" || fail "ecm --help does not mention --config"
installed_bins=$(cd "$p/bin" && ls | sort | tr '\n' ' ')
[ "$installed_bins" = "ecm ecmctl " ] || fail "bin/ holds '$installed_bins', not 'ecm ecmctl '"

echo "== plugins"
installed=$(cd "$p/lib/ecm/plugins" && ls *.so | sed 's/\.so$//' | sort | tr '\n' ' ')
[ "$installed" = "$shipped " ] || fail "lib/ecm/plugins holds '$installed', not '$shipped '"
[ -f "$p/lib/ecm/plugins/ecm_python_engine.py" ] || fail "ecm_python_engine.py is not installed"

echo "== config"
conf=$p/etc/ecm/ecm.toml
[ -f "$conf" ] || { fail "etc/ecm/ecm.toml is not installed"; conf=/dev/null; }
grep -qE "^work_root = \"$p/var/lib/ecm/work\"" "$conf" || fail "ecm.toml: work_root is not $p/var/lib/ecm/work"
grep -qE "^state_dir = \"$p/var/lib/ecm\"" "$conf" || fail "ecm.toml: state_dir is not $p/var/lib/ecm"
grep -qE "^dir = \"$p/lib/ecm/plugins\"" "$conf" || fail "ecm.toml: [plugins] dir is not $p/lib/ecm/plugins"
for name in $shipped; do
  [ -f "$p/etc/ecm/plugins/$name.toml" ] || fail "etc/ecm/plugins/$name.toml is not installed"
done
has_line "$p/etc/ecm/plugins/python.toml" \
  "engine_program = \"$p/lib/ecm/plugins/ecm_python_engine.py\""
if ! "$p/bin/ecm" --check --config "$conf" >"$tmp/check.log" 2>&1; then
  fail "ecm --check --config $conf: $(cat "$tmp/check.log")"
fi

echo "== the installed ecm runs with the installed config (on free ports)"
# A copy beside the original (plugin configs found the same way), on ports 0, with every plugin
# whose installed config loads as it is (audit-log writes to /var/log/ecm: left out).
run_conf=$p/etc/ecm/ecm-test.toml
sed -e 's/^listen = "127.0.0.1:9101"/listen = "127.0.0.1:0"/' \
  -e 's/^listen = "127.0.0.1:9102"/listen = "127.0.0.1:0"/' \
  -e 's/^enabled = \["shell"\]/enabled = ["shell", "python", "file", "http", "bml"]/' \
  -e 's/^run_as = "auto"/run_as = "ecm"/' "$conf" >"$run_conf"
grep -q '^enabled = \["shell", "python"' "$run_conf" || fail "could not enable the plugins in $run_conf"
"$p/bin/ecm" --config "$run_conf" >"$tmp/ecm.out" 2>"$tmp/ecm.err" &
ecm_pid=$!
address_file=$p/var/lib/ecm/ecm.address
for _ in $(seq 1 100); do
  [ -s "$address_file" ] && break
  kill -0 "$ecm_pid" 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$address_file" ]; then
  fail "the installed ecm did not start: $(cat "$tmp/ecm.err")"
else
  address=$(cat "$address_file")
  "$p/bin/ecmctl" --address "$address" health >"$tmp/health.out" 2>&1 ||
    fail "ecmctl health: $(cat "$tmp/health.out")"
  "$p/bin/ecmctl" --address "$address" plugins list >"$tmp/plugins.out" 2>&1 ||
    fail "ecmctl plugins list: $(cat "$tmp/plugins.out")"
  for name in shell python file http bml; do
    grep -q "$p/lib/ecm/plugins/$name.so" "$tmp/plugins.out" ||
      fail "plugin $name not loaded from $p/lib/ecm/plugins: $(cat "$tmp/plugins.out")"
  done
  [ -d "$p/var/lib/ecm/work" ] || fail "the work root $p/var/lib/ecm/work was not made"
fi
if kill -0 "$ecm_pid" 2>/dev/null; then
  kill -TERM "$ecm_pid"
  wait "$ecm_pid" || fail "the installed ecm exited with $? on SIGTERM: $(tail -5 "$tmp/ecm.err")"
fi
ecm_pid=
rm -f "$run_conf"

echo "== systemd unit"
unit=$p/lib/systemd/system/ecm.service
if [ ! -f "$unit" ]; then
  fail "lib/systemd/system/ecm.service is not installed"
else
  has_line "$unit" "KillMode=process"
  has_line "$unit" "ExecStart=$p/bin/ecm --config $p/etc/ecm/ecm.toml"
  has_line "$unit" 'ExecReload=/bin/kill -HUP $MAINPID'
  has_line "$unit" "Type=simple"
fi

echo "== docs"
for d in README.md SDK.md; do
  [ -f "$p/share/doc/ecm/$d" ] || fail "share/doc/ecm/$d is not installed"
done

echo "== a second install keeps an edited config"
echo "# edited by the administrator" >>"$conf"
"$cmake" --install "$build" --prefix "$p" >"$tmp/install2.log" 2>&1 || fail "second install failed"
grep -q "edited by the administrator" "$conf" || fail "the second install overwrote ecm.toml"
[ -f "$conf.new" ] || fail "the second install did not leave ecm.toml.new"
[ -f "$p/etc/ecm/plugins/shell.toml.new" ] && fail "an unchanged shell.toml got a .new"

echo "== DESTDIR with the prefix /usr (the .deb's layout)"
root=$tmp/root
if ! DESTDIR=$root "$cmake" --install "$build" --prefix /usr >"$tmp/install3.log" 2>&1; then
  fail "DESTDIR install failed: $(tail -5 "$tmp/install3.log")"
else
  for f in usr/bin/ecm usr/lib/ecm/plugins/shell.so etc/ecm/ecm.toml etc/ecm/plugins/shell.toml \
    usr/lib/systemd/system/ecm.service usr/share/doc/ecm/README.md; do
    [ -f "$root/$f" ] || fail "DESTDIR install: no /$f"
  done
  grep -qE '^state_dir = "/var/lib/ecm"' "$root/etc/ecm/ecm.toml" || fail "/etc/ecm/ecm.toml: state_dir"
  grep -qE '^work_root = "/var/lib/ecm/work"' "$root/etc/ecm/ecm.toml" || fail "/etc/ecm/ecm.toml: work_root"
  grep -qE '^dir = "/usr/lib/ecm/plugins"' "$root/etc/ecm/ecm.toml" || fail "/etc/ecm/ecm.toml: dir"
  has_line "$root/usr/lib/systemd/system/ecm.service" \
    "ExecStart=/usr/bin/ecm --config /etc/ecm/ecm.toml"
  leaked=$(grep -rl "$root" "$root" 2>/dev/null | grep -v '\.so$' || true)
  [ -z "$leaked" ] || fail "files name the DESTDIR: $leaked"
fi

if [ "$failures" -ne 0 ]; then
  echo "install_layout_test: $failures failure(s)" >&2
  exit 1
fi
echo "install_layout_test: ok ($(find "$p" -type f | wc -l) files under the prefix)"
