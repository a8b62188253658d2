"""How evenly ``sweep(part=(k, n))`` shares the work when a cell's cost grows along a parameter.

For grids of several shapes, a cost that grows linearly along one parameter (a longer beam,
a finer mesh), and n tasks: the slowest task's total cost over the mean task's, for
contiguous blocks of the grid (xsweep before 0.2) and for the cells dealt back and forth in
grid order that xsweep uses (``xsweep.running.cells.part_positions``). 1.00 is perfect; a
job array finishes when its slowest task does. A cost growing as the square of a parameter
is shown too: dealing balances a linear growth best. Grids of at least 16 cells per task.

Run:  python benchmarks/bench_parts.py [--strict]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from xsweep.running.cells import part_positions

SHAPES = [(40, 25), (25, 40), (8, 8, 8), (100, 3), (3, 100), (1000,), (50, 20, 10)]


def imbalance(cost: np.ndarray, parts: list[np.ndarray]) -> float:
    sums = np.array([cost[p].sum() for p in parts])
    return float(sums.max() / sums.mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    worst = {"blocks": 1.0, "dealt": 1.0, "blocks^2": 1.0, "dealt^2": 1.0}
    print(f"{'shape':>12} {'grows along':>11} {'tasks':>5} {'blocks':>7} {'dealt':>7}"
          f" {'blocks^2':>9} {'dealt^2':>8}")
    for shape in SHAPES:
        size = int(np.prod(shape))
        for axis in range(len(shape)):
            linear = np.unravel_index(np.arange(size), shape)[axis] + 1.0
            for n in (4, 10, 32):
                if size < 16 * n:  # with fewer cells per task, their count alone differs by 6%+
                    continue
                blocks = np.array_split(np.arange(size), n)
                dealt = [part_positions(size, k, n) for k in range(n)]
                row = {
                    "blocks": imbalance(linear, blocks),
                    "dealt": imbalance(linear, dealt),
                    "blocks^2": imbalance(linear**2, blocks),
                    "dealt^2": imbalance(linear**2, dealt),
                }
                worst = {key: max(worst[key], value) for key, value in row.items()}
                print(f"{str(shape):>12} {axis:>11} {n:>5} {row['blocks']:>7.2f} "
                      f"{row['dealt']:>7.2f} {row['blocks^2']:>9.2f} {row['dealt^2']:>8.2f}")
    ok = worst["dealt"] <= 1.10
    print(
        f"SUMMARY parts: slowest task / mean task, worst case, cost growing linearly: "
        f"contiguous blocks {worst['blocks']:.2f}x, dealt {worst['dealt']:.2f}x (target <= "
        f"1.10x: {'PASS' if ok else 'FAIL'}); as a square: blocks {worst['blocks^2']:.2f}x, "
        f"dealt {worst['dealt^2']:.2f}x"
    )
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
