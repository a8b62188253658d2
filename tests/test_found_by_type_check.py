"""Bugs the type check (mypy, ``[tool.mypy]`` in pyproject.toml) found, each kept fixed."""

from __future__ import annotations

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
    ps.sweep(inverse)
    assert ps.failures(inverse).to_dict("records") == [
        {"a": 0, "error": "ZeroDivisionError: division by zero"}
    ]
