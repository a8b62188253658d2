"""The conformance matrix (issue 21): every return kind x path x cell state.

What a user reads (the Dataset a sweep returns, ``run_process``, the file opened with plain
xarray through either engine) is the function's value, or visibly missing (NaN, NaT, an
empty string, a status code). The paths run once per session (``conftest.Outcomes``); each
test checks one (kind, path, state).
"""

from __future__ import annotations

import pytest

import xsweep as xs

from .checks import check_read, same
from .conftest import RESULTS
from .kinds import COMPUTED, FAILED, KINDS, NEVER, SKIPPED, STATE_NAMES, STATES
from .paths import Calls
from .table import KNOWN, applies, paths


def _params():
    for kind in KINDS:
        for path in paths():
            for state in STATE_NAMES:
                if not applies(kind, path, state):  # counted in the summary, not a test
                    continue
                marks = []
                reason = KNOWN.get((kind.name, path.id, state))
                if reason:
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                yield pytest.param(
                    kind,
                    path,
                    state,
                    marks=marks,
                    id=f"{kind.name}-{path.id}-{state.replace(' ', '_')}",
                )


def _check_calls(calls: Calls, kind, path_id: str, state: str) -> None:
    for a, cell_state in STATES.items():
        if cell_state != state:
            continue
        how, value = calls.results[a]
        where = f"run_process({kind.fname}, a={a}) on path {path_id} ({state})"
        if state in (COMPUTED, NEVER):  # never computed: run_process computes it
            if how == "raised":
                raise AssertionError(f"{where} raised {value!r}") from value
            same(value, kind.make(a))
            assert a not in calls.recomputed, f"{where}: called fn for a cached cell"
        elif state == FAILED:
            assert how == "raised" and isinstance(value, ValueError), f"{where}: {value!r}"
        elif state == SKIPPED:
            assert how == "raised" and isinstance(value, xs.SkipCell), f"{where}: {value!r}"


@pytest.mark.parametrize("kind, path, state", list(_params()))
def test_conformance(kind, path, state, outcomes, request):
    key = (kind.name, path.id, state)
    if path.id == "h5netcdf":  # in the test extra; skip rather than fail without it
        pytest.importorskip("h5netcdf")
    RESULTS[key] = "known bug" if key in KNOWN else "wrong"
    outcome = outcomes(path.id)[kind.name]
    if isinstance(outcome, BaseException):
        raise AssertionError(f"{path.id} of {kind.name}: {outcome!r}") from outcome
    if isinstance(outcome, Calls):
        _check_calls(outcome, kind, path.id, state)
    else:
        checked = sum(check_read(read, kind, state) for read in outcome)
        assert checked, f"no cell of {kind.name} in state {state} on {path.id}"
    RESULTS[key] = "checked"
