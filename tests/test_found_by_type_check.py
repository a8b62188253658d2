"""Bugs the type check (mypy, ``[tool.mypy]`` in pyproject.toml) found, each kept fixed."""

from __future__ import annotations

import sys

import pytest

import xsweep as xs


def test_failures_before_any_sweep_is_an_empty_table_over_the_functions_dims():
    # Nothing swept yet, no cache: the space has no store to read; it used to raise
    # AttributeError ('NoneType' object has no attribute 'functions').
    ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2]), xs.Parameter("b", values=[1])])

    def inverse(a):
        return 1 / a

    failures = ps.failures(inverse)
    assert failures.empty
    assert list(failures.columns) == ["a", "error"]
    # and once swept, the same call lists the failed cell
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(inverse)
    assert ps.failures(inverse).to_dict("records") == [
        {"a": 0, "error": "ZeroDivisionError: division by zero"}
    ]


def test_outputs_that_do_not_fit_together_are_named_by_their_names(tmp_path):
    # A table output (CSV) and another output given the same dim with another length: the
    # message names the outputs; it used to list the values of the table's last column.
    script = tmp_path / "sim.py"
    script.write_text(
        "import json, sys\n"
        "n = int(sys.argv[1])\n"
        "open('table.csv', 'w').write('x,y\\n' + ''.join(f'{i},{i * n}\\n' for i in range(3)))\n"
        "json.dump(list(range(5)), open('trace.json', 'w'))\n"
    )
    sim = xs.command(
        [sys.executable, str(script), "{n}"],
        workdir=str(tmp_path / "runs" / "n={n}"),
        outputs={"table": "table.csv", "trace": "trace.json"},
        dims={"table": ("row",), "trace": ("row",)},
    )
    ps = xs.ParameterSpace([xs.Parameter("n", values=[1])])
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(sim)
    [error] = ps.failures(sim)["error"].tolist()
    assert "The outputs ['table', 'trace'] do not fit in one Dataset" in error
    assert "Name their dims apart with dims={...}" in error
    # the way out the message gives: dims of their own, and the cell is computed
    sim_apart = xs.command(
        [sys.executable, str(script), "{n}"],
        workdir=str(tmp_path / "runs" / "n={n}"),
        outputs={"table": "table.csv", "trace": "trace.json"},
        dims={"table": ("row",), "trace": ("t",)},
    )
    ds = ps.sweep(sim_apart)
    assert ds["trace"].values.tolist() == [[0, 1, 2, 3, 4]]
