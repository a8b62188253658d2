"""Adaptive refinement on a grid (``ps.refine``) against a uniform grid and ``adaptive``.

For functions with sharp features in 1, 2 and 3 dimensions (a narrow peak and a step in 1D;
a ring, a front along an axis and an oblique front in 2D; a front along an axis and a
spherical shell in 3D), all on ``[-1, 1]`` per axis, and for a few error targets, it counts
what each way of sampling computes to reach the SAME error:

- ``uniform``: the smallest uniform grid (``N`` values per axis, ``N**d`` cells) that reaches
  it (the first ``N``, scanning upward);
- ``ps.refine``: the cells of the grid refined from 5 values per axis with the defaults
  (``loss="curvature"``) and the smallest ``max_cells`` that reaches it (found by bisection
  between the refinement's rounds, each try a new refinement from scratch);
- ``adaptive``: the points of ``adaptive.Learner1D`` (with its default loss, and with its
  curvature loss), ``Learner2D`` and ``LearnerND`` (3D), run in this process by adaptive's
  own runner (``adaptive.runner.simple``, one point at a time), and the smallest number of
  points that reaches it (found by bisection from a copy of the learner).

The error is the **mean absolute error** of linear interpolation of the samples against the
true function on a fine reference grid (the L1 norm over the domain divided by its volume,
by the midpoint rule on a cell-centred grid: 100,000 points in 1D, 500 x 500 in 2D, 100**3
in 3D; fewer with ``--quick``). Grids are interpolated by ``np.interp`` (1D) and
``scipy.interpolate.RegularGridInterpolator`` (2D, 3D); learners by their own interpolation:
``np.interp`` over the sorted points in 1D, ``Learner2D.interpolator(scaled=False)`` and a
``scipy.interpolate.LinearNDInterpolator`` over ``LearnerND``'s points.

The ratios compare counts in the same run: ``uniform/refine`` and ``learner/refine`` above 1
mean that ``ps.refine`` computes fewer cells than the other needs points, below 1 more. The
functions are cheap, so the wall times are each tool's own cost: ``ps.refine``'s per round
(``on_round``'s ``RoundReport.seconds``: growing the grid and sweeping its new cells, and
``overhead``: reading the output, the losses, choosing) and adaptive's per point.

Install: ``pip install -e ".[bench]"`` (adaptive and scipy).
Run:     ``python benchmarks/bench_adaptive.py [--quick] [--only LABEL]`` (full: about 4
         minutes, most of it in adaptive's learners; quick: the 1D peak and the 2D ring at
         one error each, about 15 s). docs/refining.md shows a full run's tables.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

try:
    import adaptive
    from scipy.interpolate import LinearNDInterpolator, RegularGridInterpolator
except ImportError as exc:  # pragma: no cover - the benchmark's own environment
    sys.exit(f"bench_adaptive needs adaptive and scipy ({exc}): pip install -e '.[bench]'")

import xsweep as xs

perf = time.perf_counter
NAMES = "xyz"
START = 5  # values per axis that ps.refine starts from


# -- the functions: vectorised, over x (and y, z) in [-1, 1] ---------------------------------------
def peak(x):
    """A narrow peak on a slope, as in adaptive's documentation (width 0.01)."""
    a = 0.01
    return x + a**2 / (a**2 + (x - 0.1234) ** 2)


def step(x):
    """A smooth wave with a step of height 2 and width 0.002."""
    return 0.5 * np.sin(3 * x) + np.tanh((x - 0.2718) / 0.002)


def ring(x, y):
    """A ring of radius 0.75 on a slope, as in adaptive's documentation (Learner2D)."""
    return x + np.exp(-((x**2 + y**2 - 0.75**2) ** 2) / 0.2**4)


def front(x, y):
    """A front along y (across x, width 0.02) and a gentle bend along y."""
    return np.tanh((x - 0.1234) / 0.02) + 0.25 * y**2


def oblique(x, y):
    """A straight front across the diagonal (width 0.02)."""
    return np.tanh(((x + y) / np.sqrt(2) - 0.1234) / 0.02)


def front3(x, y, z):
    """A front across x (width 0.05) and gentle bends along y and z."""
    return np.tanh((x - 0.1234) / 0.05) + 0.25 * (y**2 + z**2)


def shell(x, y, z):
    """A spherical shell: a front across the radius 0.6 (width 0.05)."""
    return np.tanh((np.sqrt(x**2 + y**2 + z**2) - 0.6) / 0.05)


@dataclass
class Case:
    label: str
    f: Callable[..., np.ndarray]
    dims: int
    targets: tuple[float, ...]
    refine_cap: int  # the most cells ps.refine may reach
    uniform_cap: int  # the most values per axis of a uniform grid
    learner_cap: int  # the most points a learner may compute
    quick_targets: tuple[float, ...] = ()  # non-empty: part of --quick, with these targets


CASES = [
    Case("peak 1D", peak, 1, (1e-3, 1e-4, 1e-5), 4000, 100_000, 6000, (1e-4,)),
    Case("step 1D", step, 1, (1e-3, 1e-4, 1e-5), 4000, 100_000, 6000),
    Case("ring 2D", ring, 2, (1e-2, 3e-3, 1e-3), 60_000, 400, 8000, (1e-2,)),
    Case("front 2D, along y", front, 2, (1e-2, 3e-3, 1e-3), 60_000, 400, 8000),
    Case("front 2D, oblique", oblique, 2, (1e-2, 3e-3, 1e-3), 60_000, 400, 8000),
    Case("front 3D, along y-z", front3, 3, (3e-2, 1e-2, 3e-3), 150_000, 120, 4000),
    Case("shell 3D", shell, 3, (3e-2, 2e-2, 1e-2), 150_000, 120, 4000),
]


# -- the error -------------------------------------------------------------------------------------
class Reference:
    """The true function on a fine cell-centred grid, and the mean absolute error against it."""

    def __init__(self, case: Case, n: int):
        self.dims = case.dims
        self.axis = -1 + (np.arange(n) + 0.5) * (2.0 / n)  # no point on a grid's nodes by design
        mesh = np.meshgrid(*[self.axis] * case.dims, indexing="ij")
        self.points = np.stack([m.ravel() for m in mesh], axis=-1)
        self.truth = case.f(*mesh).ravel()

    def error(self, estimate: np.ndarray) -> float:
        return float(np.mean(np.abs(np.asarray(estimate).ravel() - self.truth)))

    def grid_error(self, axes: list[np.ndarray], values: np.ndarray) -> float:
        if self.dims == 1:
            return self.error(np.interp(self.axis, axes[0], values))
        return self.error(RegularGridInterpolator(tuple(axes), values)(self.points))

    def learner_error(self, learner) -> float:
        if self.dims == 1:
            x = np.array(sorted(learner.data))
            y = np.array([learner.data[v] for v in x])
            return self.error(np.interp(self.axis, x, y))
        if self.dims == 2:
            return self.error(learner.interpolator(scaled=False)(self.points))
        return self.error(LinearNDInterpolator(learner.points, learner.values)(self.points))


def on_grid(f: Callable[..., np.ndarray], axes: list[np.ndarray]) -> np.ndarray:
    return f(*np.meshgrid(*axes, indexing="ij"))


# -- uniform grids ---------------------------------------------------------------------------------
def uniform_cells(case: Case, ref: Reference, target: float) -> int | None:
    """Cells of the smallest uniform grid (N values per axis) whose error is <= target."""

    def error(n: int) -> float:
        axes = [np.linspace(-1, 1, n)] * case.dims
        return ref.grid_error(axes, on_grid(case.f, axes))

    last, n = 1, 2
    while n <= case.uniform_cap and error(n) > target:  # a coarse scan, then every N
        last, n = n, max(n + 1, int(n * 1.15))
    if n > case.uniform_cap:
        return None
    for m in range(last + 1, n + 1):
        if error(m) <= target:
            return m**case.dims
    return n**case.dims  # pragma: no cover - the loop reaches n


# -- ps.refine -------------------------------------------------------------------------------------
def cell_function(case: Case) -> Callable[..., float]:
    """The function as xsweep sweeps it: one cell, arguments named after the parameters."""
    f = case.f
    if case.dims == 1:

        def cell(x):
            return float(f(x))

    elif case.dims == 2:

        def cell(x, y):
            return float(f(x, y))

    else:

        def cell(x, y, z):
            return float(f(x, y, z))

    return cell


@dataclass
class Refined:
    """One refinement from scratch: its rounds, each round's grid, the final Dataset."""

    cells: int
    error: float  # of the Dataset ps.refine returned
    wall: float
    reports: list = field(default_factory=list)
    grids: list = field(default_factory=list)


def refine(case: Case, ref: Reference, max_cells: int) -> Refined:
    params = [
        xs.Parameter(NAMES[i], values=np.linspace(-1, 1, START), bounds=(-1.0, 1.0))
        for i in range(case.dims)
    ]
    ps = xs.ParameterSpace(params)
    reports, grids = [], []

    def on_round(report):  # only copies: on_round runs between rounds, inside the wall time
        reports.append(report)
        grids.append([p.values.astype(np.float64) for p in params])

    t = perf()
    ds = ps.refine(cell_function(case), max_cells=max_cells, on_round=on_round, name="f")
    wall = perf() - t
    axes = [ds[n].values.astype(np.float64) for n in NAMES[: case.dims]]
    values = ds["f"].values
    assert np.array_equal(values, on_grid(case.f, axes)), "ps.refine's values are not f's"
    return Refined(values.size, ref.grid_error(axes, values), wall, reports, grids)


def refine_cells(case: Case, ref: Reference, run: Refined, target: float):
    """Cells of the smallest refined grid whose error is <= target, and the reports of the
    rounds that reached it: the first round that reaches it in ``run``, then a bisection on
    ``max_cells`` below that round's size (each try a refinement from scratch)."""
    errors = [ref.grid_error(g, on_grid(case.f, g)) for g in run.grids]
    sizes = [r.cells for r in run.reports]
    hit = next((k for k, e in enumerate(errors) if e <= target), None)
    if hit is None:
        return None, []
    best, reports = sizes[hit], run.reports[: hit + 1]
    low, high = (sizes[hit - 1], sizes[hit]) if hit else (sizes[0], sizes[0])
    while high - low > max(1, high // 100):  # to within 1 %
        middle = (low + high) // 2
        tried = refine(case, ref, middle)
        if tried.error <= target:
            high, best, reports = middle, tried.cells, tried.reports
        else:
            low = middle
    return best, reports


# -- adaptive --------------------------------------------------------------------------------------
LEARNERS = {
    1: [
        ("Learner1D", lambda f: adaptive.Learner1D(lambda x: float(f(x)), (-1, 1))),
        (
            "Learner1D curvature",
            lambda f: adaptive.Learner1D(
                lambda x: float(f(x)),
                (-1, 1),
                loss_per_interval=adaptive.learner.learner1D.curvature_loss_function(),
            ),
        ),
    ],
    2: [("Learner2D", lambda f: adaptive.Learner2D(lambda p: float(f(*p)), [(-1, 1)] * 2))],
    3: [("LearnerND", lambda f: adaptive.LearnerND(lambda p: float(f(*p)), [(-1, 1)] * 3))],
}


@dataclass
class Learned:
    points: dict  # target: the fewest points that reach it, or None within the cap
    seconds: dict  # target: adaptive's own time to those points (no error evaluation)


def learn(case: Case, ref: Reference, make, targets: tuple[float, ...]) -> Learned:
    """Run a learner to each target: checkpoints 25 % apart, then a bisection from a copy
    of the learner at the checkpoint before (learners are deterministic)."""
    learner = make(case.f)
    points, seconds = {}, {}
    wall, before, n = 0.0, 0, 2**case.dims + 1
    pending = sorted(targets, reverse=True)
    while pending and before < case.learner_cap:
        n = min(n, case.learner_cap)
        saved, saved_wall = copy.deepcopy(learner), wall
        t = perf()
        adaptive.runner.simple(learner, npoints_goal=n)
        wall += perf() - t
        error = ref.learner_error(learner)
        while pending and error <= pending[0]:
            target = pending.pop(0)
            low, high, took = before, learner.npoints, wall
            while high - low > max(1, high // 100):  # to within 1 %
                middle = (low + high) // 2
                tried = copy.deepcopy(saved)
                t = perf()
                adaptive.runner.simple(tried, npoints_goal=middle)
                tried_wall = saved_wall + perf() - t
                if ref.learner_error(tried) <= target:
                    high, took = middle, tried_wall
                else:
                    low = max(middle, tried.npoints)
            points[target], seconds[target] = high, took
        before, n = learner.npoints, int(learner.npoints * 1.25) + 1
    return Learned({t: points.get(t) for t in targets}, seconds)


# -- the report ------------------------------------------------------------------------------------
def count(cells: int | None, cap: int) -> str:
    return f"> {cap}" if cells is None else str(cells)


def ratio(other: int | None, refined: int | None, cap: int) -> str:
    """``other / refined``; a lower bound when the other did not reach it within its cap."""
    if refined is None:
        return "-"
    if other is None:
        return f"> {cap / refined:.2f}"
    return f"{other / refined:.2f}"


def run_case(case: Case, quick: bool) -> tuple[list[str], tuple | None]:
    """Print the case's rows; its SUMMARY lines, and what the timing table needs."""
    targets = case.quick_targets if quick else case.targets
    n_ref = {1: 100_000, 2: 250 if quick else 500, 3: 100}[case.dims]
    ref = Reference(case, n_ref)
    run = refine(case, ref, case.refine_cap)
    peers = LEARNERS[case.dims][:1] if quick else LEARNERS[case.dims]
    learners = [(name, learn(case, ref, make, targets)) for name, make in peers]
    rows, timing = [], None
    uniform_cap = case.uniform_cap**case.dims
    for target in targets:
        uniform = uniform_cells(case, ref, target)
        refined, reports = refine_cells(case, ref, run, target)
        # time the smallest target that all reached (else the smallest ps.refine reached)
        if refined is not None and (
            timing is None or all(learned.points[target] for _, learned in learners)
        ):
            timing = (case, target, refined, reports, learners)
        for k, (name, learned) in enumerate(learners):
            points = learned.points[target]
            first = [
                case.label,
                f"{target:g}",
                count(uniform, uniform_cap),
                count(refined, case.refine_cap),
            ]
            cells = first if k == 0 else [""] * 4
            print(
                f"{cells[0]:<20} {cells[1]:>7} {cells[2]:>9} {cells[3]:>9} {name:<20} "
                f"{count(points, case.learner_cap):>7} "
                f"{ratio(uniform, refined, uniform_cap) if k == 0 else '':>9} "
                f"{ratio(points, refined, case.learner_cap):>9}",
                flush=True,
            )
            rows.append(
                f"SUMMARY adaptive {case.label}, error {target:g}: uniform {first[2]} cells, "
                f"ps.refine {first[3]} cells, {name} {count(points, case.learner_cap)} points "
                f"(uniform/refine {ratio(uniform, refined, uniform_cap)}, learner/refine "
                f"{ratio(points, refined, case.learner_cap)})"
            )
    return rows, timing


def print_timings(timings: list[tuple]) -> None:
    print()
    print(
        "Time to the smallest error reached (cheap functions: each tool's own cost); "
        "ps.refine per round: growing the grid and sweeping its new cells (RoundReport.seconds) "
        "and choosing the next values (RoundReport.overhead)"
    )
    print(
        f"{'function':<20} {'target':>7} {'cells':>6} {'rounds':>6} {'s':>6} {'us/cell':>8} "
        f"{'sweep ms/round':>14} {'choose ms/round':>15} | {'learner':<20} {'points':>6} "
        f"{'s':>6} {'us/point':>8}"
    )
    for case, target, cells, reports, learners in timings:
        seconds = [r.seconds for r in reports[1:]] or [0.0]  # round 0 sweeps the declared grid
        overhead = [r.overhead for r in reports]
        took = sum(r.seconds + r.overhead for r in reports)
        for k, (name, learned) in enumerate(learners):
            left = (
                f"{case.label:<20} {target:>7g} {cells:>6} {len(reports) - 1:>6} {took:>6.3f} "
                f"{took / cells * 1e6:>8.1f} {np.mean(seconds) * 1e3:>14.1f} "
                f"{np.mean(overhead) * 1e3:>6.1f} (max {max(overhead) * 1e3:>4.1f})"
                if k == 0
                else " " * 88
            )
            points = learned.points[target]
            right = (
                f"{points:>6} {learned.seconds[target]:>6.3f} "
                f"{learned.seconds[target] / points * 1e6:>8.1f}"
                if points is not None
                else f"{'-':>6} {'-':>6} {'-':>8}"
            )
            print(f"{left} | {name:<20} {right}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 15 s)")
    parser.add_argument("--only", help="run only the functions whose label contains this")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)  # adaptive's, on flat triangles
    print(
        f"xsweep {xs.__version__}, adaptive {adaptive.__version__}, numpy {np.__version__}, "
        f"python {sys.version.split()[0]}"
    )
    print(
        "Cells (points) needed for a mean absolute error <= target against the true function "
        "(linear interpolation); ratios > 1: ps.refine computes fewer"
    )
    print(
        f"{'function':<20} {'target':>7} {'uniform':>9} {'ps.refine':>9} {'learner':<20} "
        f"{'points':>7} {'uni/ref':>9} {'lrn/ref':>9}"
    )
    started = perf()
    summaries, timings = [], []
    for case in CASES:
        if args.quick and not case.quick_targets:
            continue
        if args.only and args.only not in case.label:
            continue
        rows, timing = run_case(case, args.quick)
        summaries += rows
        if timing is not None:
            timings.append(timing)
    print_timings(timings)
    print()
    for line in summaries:
        print(line)
    print(f"(took {perf() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
