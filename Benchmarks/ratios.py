#!/usr/bin/env python3
"""Prints the ratio table of a package-benchmark JMH export (see ratios.sh).

Benchmark names are "<row> | <side> | per <ops>" (BenchSupport.benchmarkName). In each row the side starting
with "ceiling: " is the reference; every other side is DataDist. The ratio is ceiling time / DataDist time on
medians (p50) of the wall clock, so 1.00 means "as fast as the ceiling" and higher is better.
"""
import json
import re
import sys

# Goal per row prefix: the lowest acceptable ratio (None: reported, no goal). The key-index rows compare 1 M
# with 1 K live keys; "flat" means no steeper than a bare Dictionary of the same shapes on this machine
# (the "Dictionary miss reference" row, measured in the same run), with 10 % slack.
GOALS = [("alloc ", 1.00), ("copyCache ", 0.95)]
REFERENCE_ROW = "Dictionary miss reference"
FLAT_ROWS = "removeCacheKey "
NAME = re.compile(r"^package\.benchmark\.(?P<target>[^.]+)\.(?P<name>.*)$")


def row_ratio(sides):
    ceilings = [side for side in sides if side.startswith("ceiling: ")]
    others = [side for side in sides if side not in ceilings]
    if len(ceilings) != 1 or len(others) != 1:
        return None
    return sides[ceilings[0]]["ns"] / sides[others[0]]["ns"]


def goal_for(row, rows):
    if row.startswith(FLAT_ROWS):
        reference = row_ratio(rows.get(REFERENCE_ROW, {}))
        return None if reference is None else 0.9 * reference
    return next((goal for prefix, goal in GOALS if row.startswith(prefix)), None)


def load(paths):
    rows = {}
    for path in paths:
        with open(path) as handle:
            for element in json.load(handle):
                match = NAME.match(element["benchmark"])
                if not match:
                    continue
                parts = match["name"].replace("_", " ").split(" | ")
                if len(parts) != 3 or not parts[2].startswith("per "):
                    continue
                row, side, ops = parts[0], parts[1], int(parts[2][4:])
                metrics = element["secondaryMetrics"]
                wall = metrics["Time (wall clock)"]
                mallocs = metrics.get("Malloc (total)")
                rows.setdefault(row, {})[side] = {
                    # JMH exports time in microseconds per measured iteration.
                    "ns": wall["scorePercentiles"]["50.0"] * 1000.0 / ops,
                    "p90ns": wall["scorePercentiles"]["90.0"] * 1000.0 / ops,
                    "mallocs": mallocs["scorePercentiles"]["50.0"] / ops if mallocs else float("nan"),
                    "samples": element["measurementIterations"],
                }
    return rows


def main(paths):
    rows = load(paths)
    if not rows:
        sys.exit("no benchmark results found in " + " ".join(paths))
    header = f"{'row':<26} {'side':<34} {'p50 ns/op':>12} {'p90 ns/op':>12} {'mallocs/op':>10} {'ratio':>7} {'goal':>6}"
    print(header)
    print("-" * len(header))
    missed = 0
    for row in sorted(rows):
        sides = rows[row]
        ceilings = [side for side in sides if side.startswith("ceiling: ")]
        ceiling = sides[ceilings[0]] if len(ceilings) == 1 else None
        goal = goal_for(row, rows)
        for side in sorted(sides, key=lambda s: (not s.startswith("ceiling: "), s)):
            value = sides[side]
            ratio = ""
            verdict = ""
            if ceiling is not None and side not in ceilings:
                r = ceiling["ns"] / value["ns"]
                ratio = f"{r:.2f}"
                if goal is not None:
                    ok = r >= goal
                    missed += not ok
                    verdict = f"{goal:.2f}" + ("" if ok else " MISS")
            print(f"{row:<26} {side:<34} {value['ns']:>12.1f} {value['p90ns']:>12.1f} {value['mallocs']:>10.2f} {ratio:>7} {verdict:>6}")
    print(f"\nratio = ceiling p50 / DataDist p50 (higher is better); {missed} row(s) below goal")


if __name__ == "__main__":
    main(sys.argv[1:])
