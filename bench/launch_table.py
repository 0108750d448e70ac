#!/usr/bin/env python3
"""launch_table: the table of bench/run.sh's launch comparison, from the JSON files that
launch_floor, launch_bench (the ECM) and supervisord_peer.py wrote in DIR, named
launch-{floor,ecm,supervisord}-N-ROUND.json. Each figure is the median over the rounds; the ratios
are of those medians. The ECM's targets (issue 8) are checked on the largest N, and on every N for
the launch figures; a missed one is marked MISSED (the exit code stays 0: a benchmark reports).

Usage: launch_table.py DIR
"""
import glob
import json
import os
import re
import statistics
import sys

PEERS = ("floor", "ecm", "supervisord")


def load(directory):
    """{(peer, n): [json per round]}"""
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "launch-*-*-*.json"))):
        m = re.fullmatch(r"launch-(\w+)-(\d+)-(\d+)\.json", os.path.basename(path))
        if not m or m.group(1) not in PEERS:
            continue
        with open(path) as f:
            runs.setdefault((m.group(1), int(m.group(2))), []).append(json.load(f))
    return runs


def median(runs, *keys):
    values = []
    for r in runs:
        v = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)) and v >= 0:
            values.append(v)
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}" if v < 100 else f"{v:,.0f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def mark(ok):
    return "ok" if ok else "MISSED"


def main():
    directory = sys.argv[1]
    runs = load(directory)
    ns = sorted({n for (_, n) in runs})
    if not ns:
        print("no launch results in " + directory)
        return
    rounds = max(len(v) for v in runs.values())
    rows = [
        ("sequential launch p50 (ms)", ("sequential", "p50_ms"), 3, "lower"),
        ("sequential launch p99 (ms)", ("sequential", "p99_ms"), 3, "lower"),
        ("sequential launches/s", ("sequential", "launches_per_s"), 0, "higher"),
        ("4 clients: launches/s", ("concurrent", "launches_per_s"), 0, "higher"),
        ("4 clients: launch p99 (ms)", ("concurrent", "p99_ms"), 3, "lower"),
        ("stops/s", ("stop", "stops_per_s"), 0, "higher"),
    ]
    print(f"== launch: N engines of /bin/sleep 1000 (medians of {rounds} rounds; "
          "floor = posix_spawn, peer = supervisord over XML-RPC)")
    header = f"{'':34}{'floor':>10}{'ECM':>10}{'peer':>10}{'ECM/floor':>11}{'ECM/peer':>10}"
    targets = []
    for n in ns:
        print(f"\nN = {n}")
        print(header)
        figures = {}
        for label, keys, digits, better in rows:
            f, e, p = (median(runs.get((peer, n), []), *keys) for peer in PEERS)
            figures[keys] = (f, e, p)
            print(f"  {label:32}{fmt(f, digits):>10}{fmt(e, digits):>10}{fmt(p, digits):>10}"
                  f"{fmt(ratio(e, f)) + 'x' if ratio(e, f) else '-':>11}"
                  f"{fmt(ratio(e, p)) + 'x' if ratio(e, p) else '-':>10}")
        f50, e50, _ = figures[("sequential", "p50_ms")]
        _, e99, _ = figures[("sequential", "p99_ms")]
        _, ec, pc = figures[("concurrent", "launches_per_s")]
        if e50 is not None and f50:
            targets.append((f"N={n}: sequential p50 <= 2x floor",
                            f"{e50 / f50:.2f}x", e50 <= 2 * f50))
        if e99 is not None:
            targets.append((f"N={n}: sequential p99 <= 5 ms", f"{e99:.2f} ms", e99 <= 5))
        if ec is not None:
            targets.append((f"N={n}: 4 clients >= 1,000 launches/s", f"{ec:,.0f}/s", ec >= 1000))
            if pc:
                targets.append((f"N={n}: 4 clients >= 10x supervisord", f"{ec / pc:.1f}x",
                                ec >= 10 * pc))

    big = ns[-1]
    ecm = runs.get(("ecm", big), [])
    lst = median(ecm, "list", "p50_ms")
    engines = median(ecm, "list", "engines")
    idle = median(ecm, "rss", "idle_bytes")
    full = median(ecm, "rss", "with_n_bytes")
    per = median(ecm, "rss", "per_engine_bytes")
    cpu_runs = [r for r in ecm if r.get("idle_cpu", {}).get("seconds", 0) > 0]
    cpu = median(cpu_runs, "idle_cpu", "percent_of_a_core")
    cpu_s = cpu_runs[0]["idle_cpu"]["seconds"] if cpu_runs else 0
    print(f"\nECM with N = {big} engines")
    rpc = median(ecm, "rpc_round_trip_p50_ms")
    cpu_launch = median(ecm, "daemon_cpu_us_per_sequential_launch")
    if rpc is not None:
        print(f"  RPC round trip of a call doing next to nothing (getResources), p50: {rpc:.3f} ms")
    if cpu_launch is not None:
        print(f"  the daemon's own CPU per sequential launch: {cpu_launch:,.0f} us")
    if lst is not None:
        print(f"  listEngineConns of {engines:,.0f} engines, p50: {lst:.3f} ms")
        targets.append((f"listEngineConns of {big} <= 2 ms", f"{lst:.3f} ms", lst <= 2))
    if per is not None:
        print(f"  resident memory: idle {idle / 1024:,.0f} KiB, with {big} engines "
              f"{full / 1024:,.0f} KiB: {per / 1024:.2f} KiB per engine")
        targets.append(("<= 20 KiB of ECM memory per engine", f"{per / 1024:.2f} KiB",
                        per <= 20 * 1024))
    if cpu is not None:
        print(f"  CPU of the ECM over {cpu_s} s with {big} idle engines: {cpu:.3f} % of a core")
        targets.append((f"idle CPU with {big} engines < 1% of a core", f"{cpu:.3f} %", cpu < 1))

    print("\n== targets")
    for label, value, ok in targets:
        print(f"  {label:44}{value:>12}  {mark(ok)}")


if __name__ == "__main__":
    main()
