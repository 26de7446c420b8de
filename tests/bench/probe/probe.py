#!/usr/bin/env python3
"""Interactive prober for shared_mount_latency.sh: for SECONDS, stat and
read (open, read all, close) the small files of DIR in turn, pausing PAUSE_MS
between probes, and print one line per kind:
  <kind> n=<count> p50=<ms> p99=<ms> max=<ms>
Each probe is timed alone (time.monotonic_ns around the one call)."""
import os
import sys
import time


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] / 1e6 if v else float("nan")


def main():
    d, seconds, pause_ms = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    names = sorted(os.listdir(d))
    times = {"stat": [], "read": []}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        path = os.path.join(d, names[i % len(names)])
        i += 1
        t0 = time.monotonic_ns()
        os.stat(path)
        t1 = time.monotonic_ns()
        with open(path, "rb") as f:
            f.read()
        t2 = time.monotonic_ns()
        times["stat"].append(t1 - t0)
        times["read"].append(t2 - t1)
        time.sleep(pause_ms / 1000)
    for kind, v in times.items():
        print(f"{kind} n={len(v)} p50={pct(v, .5):.1f} p99={pct(v, .99):.1f} max={pct(v, 1):.1f}")


if __name__ == "__main__":
    main()
