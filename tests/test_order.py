"""``sweep(order="spread")``: coarse sub-grids first, every cell once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xsweep as xs

VISITED: list[tuple] = []


def record(a, b):
    VISITED.append((a, b))
    return a * 100 + b


def grid(n: int = 9, m: int = 9) -> xs.ParameterSpace:
    return xs.ParameterSpace(
        [xs.Parameter("a", values=range(n)), xs.Parameter("b", values=range(m))]
    )


@pytest.fixture(autouse=True)
def clear():
    VISITED.clear()


def test_the_first_k_squared_cells_are_a_sub_grid_spread_over_the_whole_grid():
    ds = grid().sweep(record, order="spread", progress=False)
    assert sorted(VISITED) == sorted(itertools.product(range(9), range(9)))  # each once
    firsts = [0, 8, 4, 2, 6]  # each parameter's ends, then its middle, then the quarters
    for k in (2, 3, 5):
        sub = set(itertools.product(firsts[:k], firsts[:k]))
        assert set(VISITED[: k * k]) == sub, k
    assert np.array_equal(ds["record"].values, ds["a"].values[:, None] * 100 + ds["b"].values)


def test_uneven_and_three_dimensional_grids():
    seen = []

    def corners(a, b, c):
        seen.append((a, b, c))
        return a + b + c

    ps = xs.ParameterSpace(
        [
            xs.Parameter("a", values=range(5)),
            xs.Parameter("b", values=range(2)),
            xs.Parameter("c", values=[0.5, 1.5, 2.5]),
        ]
    )
    ps.sweep(corners, order="spread", progress=False)
    assert len(seen) == len(set(seen)) == 30
    assert set(seen[:8]) == set(itertools.product([0, 4], [0, 1], [0.5, 2.5]))


def test_a_stopped_spread_sweep_resumes_and_fills_in_between(tmp_path):
    ps = grid()
    ps.enable_cache(str(tmp_path / "r.nc"))
    ps.sweep(record, order="spread", cells={"a": [0, 4, 8], "b": [0, 4, 8]}, progress=False)
    VISITED.clear()
    ds = ps.sweep(record, order="spread", progress=False)
    assert len(VISITED) == 72 and not set(VISITED) & set(itertools.product([0, 4, 8], repeat=2))
    assert set(VISITED[:16]) == set(itertools.product([0, 8, 4, 2, 6], repeat=2)) - set(
        itertools.product([0, 4, 8], repeat=2)
    )
    assert (ds["record_status"] == 1).all()


def test_spread_order_on_a_process_pool_computes_every_cell_once():
    ds = grid(7, 6).sweep(record, order="spread", workers=2, progress=False)
    assert np.array_equal(ds["record"].values, ds["a"].values[:, None] * 100 + ds["b"].values)


def test_an_unknown_order_is_refused():
    with pytest.raises(xs.SweepError, match="order='random'.*'grid', 'spread'"):
        grid().sweep(record, order="random")
