#!/usr/bin/env python3
"""supervisord_peer: the peer's figures for issue 8 ("the ECM launches near the speed of the
kernel, far ahead of its peer"): supervisord launching and stopping N engines of /bin/sleep 1000,
driven over XML-RPC the way a user drives it. bench/launch_floor.cpp runs the same phases on the
bare kernel, and writes the same JSON.

It writes a config into a temp dir (N programs e0..e<N-1>, autostart off, startsecs=0, logs in the
temp dir), starts its own `supervisord -c CONF` on a free loopback port and, once
supervisor.getState answers:
  1. sequential: supervisor.startProcess(name, True) for each program in turn, each call timed
     (with startsecs=0 it returns once supervisord has forked the child and marked it RUNNING);
  2. stop: supervisor.stopProcess(name, True) for each in turn (returns once it is reaped), timed
     from the first call until the last returns;
  3. concurrent: T threads, each with its own ServerProxy, start their share of the programs;
  4. stop all again, as in 2.
The JSON's "stop" is over both stops (2N engines, stops_per_s = 2N / both stop times), as in
launch_floor: every stop that ran is counted, and its failures too.

Usage: supervisord_peer.py [--n N] [--threads T] [--json PATH]. Needs supervisord on PATH (the
Debian package `supervisor`); only the stdlib is imported. Exit code 1 when a launch or a stop
failed (after the JSON is written), 130 when interrupted. Whatever ends the run, supervisord is
shut down (SIGKILL if it lingers) and any /bin/sleep it left is killed: its children are told
apart by an environment entry naming this run's temp dir.
"""
import argparse
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

MAX_ERRORS = 20
MARKER = "SUPERVISORD_PEER_RUN"  # in supervisord's environment, so in every child's


class Errors:
    def __init__(self):
        self.lock = threading.Lock()
        self.list = []

    def add(self, text):
        with self.lock:
            if len(self.list) < MAX_ERRORS:
                self.list.append(text)


def percentile(values, p):
    """Nearest-rank percentile of sorted values (0 when there are none), as launch_floor."""
    if not values:
        return 0.0
    rank = math.ceil(p / 100 * len(values))
    return values[min(max(rank, 1), len(values)) - 1]


def write_config(tmp, port, n):
    # supervisord keeps 3 pipe ends and 2 log files open per running program, and checks at start
    # that RLIMIT_NOFILE reaches minfds (default 1024: too few for 1000 programs) and
    # RLIMIT_NPROC minprocs (default 200), raising the soft limits where the hard ones allow.
    minfds = max(1024, 6 * n + 256)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < minfds:
        sys.exit(f"supervisord_peer: {n} programs want {minfds} fds, ulimit -Hn is {hard}")
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={tmp}/supervisord.log",
        f"pidfile={tmp}/supervisord.pid",
        f"childlogdir={tmp}",
        f"minfds={minfds}",
        f"minprocs={n + 256}",
        "[inet_http_server]",
        f"port=127.0.0.1:{port}",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for i in range(n):
        lines += [
            f"[program:e{i}]",
            "command=/bin/sleep 1000",
            "autostart=false",
            "autorestart=false",
            "startsecs=0",
            "startretries=0",
            "stopsignal=TERM",
            "stopwaitsecs=10",
            f"stdout_logfile={tmp}/e{i}.stdout",
            f"stderr_logfile={tmp}/e{i}.stderr",
        ]
    path = os.path.join(tmp, "supervisord.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_supervisord(binary, tmp, n):
    """Starts supervisord and waits for XML-RPC; (process, url). A port taken between free_port()
    and supervisord's bind makes it exit: then it is tried again on another port."""
    env = dict(os.environ, **{MARKER: tmp})
    for _ in range(5):
        port = free_port()
        conf = write_config(tmp, port, n)
        with open(os.path.join(tmp, "supervisord.out"), "ab") as out:
            # Its own session: a Ctrl-C reaches us only, and we stop it.
            proc = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}/RPC2"
        try:
            up = wait_ready(proc, url)
        except BaseException:  # interrupted while it comes up
            stop_supervisord(proc)
            raise
        if up:
            return proc, url
        stop_supervisord(proc)
    with open(os.path.join(tmp, "supervisord.out"), errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"supervisord did not come up:\n{tail}")


def ready(url):
    try:
        return xmlrpc.client.ServerProxy(url).supervisor.getState()["statename"] == "RUNNING"
    except Exception:  # not listening yet, or not answering XML-RPC yet
        return False


def wait_ready(proc, url, timeout=30):
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready(url):
            return True
        time.sleep(0.05)
    return False


def stop_supervisord(proc, url=None):
    if proc.poll() is not None:
        return
    try:
        if url:
            xmlrpc.client.ServerProxy(url).supervisor.shutdown()
        else:
            proc.terminate()  # stops its programs, then exits
        proc.wait(timeout=30)
    except Exception:  # no answer, or not gone in time
        proc.kill()
        proc.wait()


def own_sleeps(tmp, supervisord_pid):
    """Pids of the processes supervisord started in this run that are still there."""
    entry = f"{MARKER}={tmp}".encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == supervisord_pid:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if entry in f.read().split(b"\0"):
                    pids.append(int(name))
        except OSError:
            pass  # gone, or not ours to read
    return pids


def launch_phase(url, names, threads, errors):
    """Starts `names`, thread t taking names t, t+T, ...; (summary dict, names started)."""
    latencies = [[] for _ in range(threads)]
    started = [[] for _ in range(threads)]

    def work(t):
        server = xmlrpc.client.ServerProxy(url)
        for name in names[t::threads]:
            begin = time.perf_counter()
            try:
                ok = server.supervisor.startProcess(name, True)
            except Exception as e:  # a fault, a refused or broken connection: a failed launch
                ok, why = False, f"startProcess {name}: {e!r}"
            else:
                why = f"startProcess {name} returned {ok!r}"
            if ok is True:
                latencies[t].append((time.perf_counter() - begin) * 1000)
                started[t].append(name)
            else:
                errors.add(why)

    begin = time.perf_counter()
    if threads == 1:
        work(0)
    else:
        # Daemon threads: an interrupted run does not wait for them (supervisord is stopped).
        pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
    seconds = time.perf_counter() - begin
    values = sorted(v for part in latencies for v in part)
    done = [name for part in started for name in part]
    return {
        "count": len(names),
        "failures": len(names) - len(done),
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1] if values else 0.0,
        "launches_per_s": len(names) / seconds,
    }, done


def stop_phase(url, names, errors, tmp, supervisord_pid):
    """Stops `names` one after another; (count, failures, seconds)."""
    server = xmlrpc.client.ServerProxy(url)
    failures = 0
    begin = time.perf_counter()
    for name in names:
        try:
            if server.supervisor.stopProcess(name, True) is not True:
                raise RuntimeError("did not return True")
        except Exception as e:  # as in launch_phase
            errors.add(f"stopProcess {name}: {e!r}")
            failures += 1
    seconds = time.perf_counter() - begin
    # Checked after the clock: stopProcess(wait) returned once supervisord reaped each one.
    left = own_sleeps(tmp, supervisord_pid)
    if left:
        errors.add(f"{len(left)} process(es) still there after the stop: {left[:10]}")
        failures += len(left)
    return len(names), failures, seconds


def run(args, tmp, binary):
    errors = Errors()
    names = [f"e{i}" for i in range(args.n)]
    proc, url = start_supervisord(binary, tmp, args.n)
    try:
        seq, done = launch_phase(url, names, 1, errors)
        stop1 = stop_phase(url, done, errors, tmp, proc.pid)
        conc, done = launch_phase(url, names, args.threads, errors)
        stop2 = stop_phase(url, done, errors, tmp, proc.pid)
    finally:
        stop_supervisord(proc, url)
        left = own_sleeps(tmp, proc.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    stop_count, stop_failures, stop_seconds = (a + b for a, b in zip(stop1, stop2))
    if left:
        errors.add(f"supervisord left {len(left)} process(es) at shutdown (killed)")
        stop_failures += len(left)

    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"supervisord {version} (XML-RPC startProcess/stopProcess of /bin/sleep 1000), "
          f"n={args.n}")
    print(f"sequential:  {seq['count']} launches, {seq['failures']} failed, "
          f"{seq['launches_per_s']:.0f}/s; p50 {seq['p50_ms']:.3f} ms, p99 {seq['p99_ms']:.3f} ms, "
          f"max {seq['max_ms']:.3f} ms")
    print(f"concurrent:  {conc['count']} launches on {args.threads} threads, {conc['failures']} "
          f"failed, {conc['launches_per_s']:.0f}/s; p50 {conc['p50_ms']:.3f} ms, "
          f"p99 {conc['p99_ms']:.3f} ms")
    for i, (count, failures, seconds) in enumerate((stop1, stop2), 1):
        print(f"stop {i}:      {count} engines, {failures} failed, {count / seconds:.0f}/s")
    for e in errors.list:
        print(f"error: {e}")

    def r3(v):
        return round(float(v), 3)

    result = {
        "name": "supervisord",
        "n": args.n,
        "sequential": {"count": seq["count"], "failures": seq["failures"],
                       "p50_ms": r3(seq["p50_ms"]), "p99_ms": r3(seq["p99_ms"]),
                       "max_ms": r3(seq["max_ms"]), "launches_per_s": r3(seq["launches_per_s"])},
        "concurrent": {"threads": args.threads, "count": conc["count"],
                       "failures": conc["failures"], "launches_per_s": r3(conc["launches_per_s"]),
                       "p50_ms": r3(conc["p50_ms"]), "p99_ms": r3(conc["p99_ms"])},
        "stop": {"count": stop_count, "failures": stop_failures,
                 "stops_per_s": r3(stop_count / stop_seconds if stop_seconds > 0 else 0)},
        "errors": errors.list,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
            f.write("\n")
    return 0 if seq["failures"] + conc["failures"] + stop_failures == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="engines per phase (default 200)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--json", help="write the figures as JSON to this path")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads want positive integers")
    binary = shutil.which("supervisord") or "/usr/bin/supervisord"
    if not os.access(binary, os.X_OK):
        sys.exit("supervisord_peer: no supervisord (apt-get install supervisor)")

    # SIGTERM and SIGHUP end the run as Ctrl-C does, through the clean-up below.
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    tmp = tempfile.mkdtemp(prefix="supervisord_peer.")
    try:
        return run(args, tmp, binary)
    except KeyboardInterrupt:
        print("supervisord_peer: interrupted", file=sys.stderr)
        return 130
    finally:
        # ECM_BENCH_KEEP_FILES (bench/run.sh): left for the script to remove once every
        # benchmark has run, so this clean-up does not slow the next one's file creation.
        if not os.environ.get("ECM_BENCH_KEEP_FILES"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
