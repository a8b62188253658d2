"""``sweep(part=(k, n))``: disjoint parts that cover the grid, balanced when cost grows."""

from __future__ import annotations

import numpy as np
import pytest

import xsweep as xs
from xsweep.running.cells import part_positions


@pytest.mark.parametrize("size", [1, 2, 3, 7, 10, 64, 97, 1000, 4096, 12345])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 10])
def test_parts_are_disjoint_cover_every_cell_and_differ_by_at_most_one(size, n):
    if n > size:
        n = size
    parts = [part_positions(size, k, n) for k in range(n)]
    together = np.concatenate(parts)
    assert np.array_equal(np.sort(together), np.arange(size))  # disjoint, and cover
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert all(np.all(np.diff(p) > 0) for p in parts)  # in grid order


@pytest.mark.parametrize("shape", [(40, 25), (25, 40), (8, 8, 8), (100, 3), (3, 100), (1000,)])
@pytest.mark.parametrize("n", [4, 10])
def test_a_cost_growing_along_any_parameter_is_shared_alike(shape, n):
    size = int(np.prod(shape))
    for axis in range(len(shape)):
        cost = np.unravel_index(np.arange(size), shape)[axis] + 1.0
        sums = [cost[part_positions(size, k, n)].sum() for k in range(n)]
        # Contiguous blocks (the old split) gave the last part up to 1.9x the mean.
        assert max(sums) / np.mean(sums) < 1.1, (shape, axis, sums)


def test_each_task_of_a_split_sweep_computes_its_share_spread_over_the_grid(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(12))),
                            xs.Parameter("b", values=[1, 2])])
    seen: list[list[int]] = []
    for k in range(3):
        calls: list[int] = []

        def area(a, b, calls=calls):
            calls.append(a)
            return a * b

        ps.enable_cache(tmp_path / f"part{k}.nc")
        ps.sweep(area, part=(k, 3), progress=False)
        ps.disable_cache()
        seen.append(calls)
    assert sum(len(calls) for calls in seen) == 24
    for calls in seen:
        assert len(calls) == 8 and max(calls) - min(calls) >= 8  # not one block of rows
    merged = xs.merge_stores([tmp_path / f"part{k}.nc" for k in range(3)], tmp_path / "all.nc")
    with xs.open_dataset(merged) as ds:
        assert (ds["area_status"] == 1).all()
