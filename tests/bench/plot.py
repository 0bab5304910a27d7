"""Plots of BENCHMARKS.md: deliveries/s and latency against connections, one line per server.

Reads the JSON reports `target/bench/scan-<server>-<connections>.json` that `scripts/bench`
writes and saves `docs/bench-throughput.png` and `docs/bench-latency.png`.
"""

import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(folder):
    runs = {}
    for path in glob.glob(os.path.join(folder, "scan-*.json")):
        m = re.match(r"scan-(.+)-(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            runs.setdefault(m.group(1), []).append((int(m.group(2)), json.load(f)))
    return {k: sorted(v, key=lambda x: x[0]) for k, v in runs.items()}


def plot(runs, key, ylabel, title, out, scale=1.0, from_zero=False):
    plt.figure(figsize=(7, 4.2))
    for server, points in sorted(runs.items()):
        xs = [c for c, _ in points]
        ys = [r[key] * scale for _, r in points]
        plt.plot(xs, ys, marker="o", label=server)
    plt.xlabel("subscribed connections (one channel)")
    plt.ylabel(ylabel)
    plt.title(title)
    if from_zero:
        plt.ylim(bottom=0)
    plt.grid(True, alpha=0.3)
    plt.legend()
    plt.tight_layout()
    plt.savefig(out, dpi=110)
    plt.close()


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
    outdir = sys.argv[2] if len(sys.argv) > 2 else "docs"
    runs = load(folder)
    if not runs:
        sys.exit(f"no scan-*.json reports in {folder}")
    os.makedirs(outdir, exist_ok=True)
    plot(runs, "deliveries_per_sec", "deliveries / s", "Throughput at 100k offered deliveries/s",
         os.path.join(outdir, "bench-throughput.png"), from_zero=True)
    plot(runs, "latency_p99_ms", "p99 latency (ms)", "Publish → deliver p99 latency",
         os.path.join(outdir, "bench-latency.png"))
    print(f"wrote {outdir}/bench-throughput.png and {outdir}/bench-latency.png")


if __name__ == "__main__":
    main()
