#!/usr/bin/python3
"""Draws per-domain time and memory against N from the bench's own figures.

    bench/plot.py LINT_TSV SERVE_TSV OUT_PNG

LINT_TSV and SERVE_TSV are the tables bench/run.sh writes beside summary.txt. The plot has
two panels: the lint's wall and CPU time per domain (against knot with its default workers
and with one UDP worker), and memory per domain (the lint's peak RSS and the long-running
exporter's steady RSS). A cost that grows linearly with N is a flat line here, so "within
10 % of linear" reads as "the line rises by at most 10 %". It also prints, for each pair of
sizes, the ratio of the per-domain costs (the figure BENCHMARKS.md quotes).
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def table(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return sorted(rows, key=lambda r: int(r["n"]))


def per_domain(rows, key, scale):
    return [int(r["n"]) for r in rows if r.get(key)], [
        float(r[key]) * scale / int(r["n"]) for r in rows if r.get(key)
    ]


def main(lint_path, serve_path, out):
    lint, serve = table(lint_path), table(serve_path)
    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    curves = {
        time_ax: [
            (lint, "lint_wall_seconds", 1e3, "lint wall (knot, default workers)"),
            (lint, "lint_cpu_seconds", 1e3, "lint CPU (user + sys)"),
            (lint, "one_worker_wall_seconds", 1e3, "lint wall (knot, one UDP worker)"),
        ],
        mem_ax: [
            (lint, "lint_peak_rss_mib", 1024, "lint peak RSS"),
            (serve, "steady_rss_mib", 1024, "long-running exporter, steady RSS"),
            (serve, "metrics_bytes", 1 / 1024, "/metrics body (plain)"),
            (serve, "gzip_bytes", 1 / 1024, "/metrics body (gzip)"),
        ],
    }
    for ax, series in curves.items():
        for rows, key, scale, label in series:
            xs, ys = per_domain(rows, key, scale)
            if xs:
                ax.plot(xs, ys, marker="o", label=label)
                for a, b, ya, yb in zip(xs, xs[1:], ys, ys[1:]):
                    print(f"{key}: per domain at {b} / at {a} = {yb / ya:.2f}")
        ax.set_xscale("log")
        ax.set_xlabel("domains (N)")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    time_ax.set_ylabel("milliseconds per domain")
    time_ax.set_title("Time per domain")
    mem_ax.set_ylabel("KiB per domain")
    mem_ax.set_title("Memory per domain")
    fig.suptitle("mailauth-exporter bench: flat lines are linear costs")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
