"""The paths of the conformance matrix: each runs every kind its way and gives what users read.

A runner takes the kinds and a scratch folder and returns, per kind, a list of
:class:`~.checks.Read` (Datasets with their cells' states), a :class:`Calls` (what
``run_process`` gave per cell), or the exception the path raised. Runners are run once per
test session (memoised by the ``outcomes`` fixture in ``conftest.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import xsweep as xs

from . import kinds as K
from .checks import Read

TESTS = Path(__file__).resolve().parent.parent


def _cells(skip: str | None = K.SKIPPED) -> list[tuple[dict, str, int]]:
    return [({"a": a}, skip if s == K.SKIPPED else s, a) for a, s in K.STATES.items()]


def _sweep(ps: xs.ParameterSpace, kind: K.Kind, **kw: Any) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        return ps.sweep(K.FUNCTIONS[kind.name], cells={"a": K.SWEPT}, progress=False, **kw)


def _plain(path: Path, engine: str = "netcdf4") -> xr.Dataset:
    with xr.open_dataset(path, engine=engine) as ds:
        return ds.load()


def _each(kinds, fn: Callable[[K.Kind], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in kinds:
        try:
            out[kind.name] = fn(kind)
        except Exception as exc:  # noqa: BLE001 - the test reports it for this kind
            out[kind.name] = exc
    return out


def _status(kind: K.Kind) -> str:
    return f"{kind.fname}_status"


# -- sweeps returning a Dataset ---------------------------------------------------------------
def no_cache(kinds, tmp: Path, **_: Any):
    return _each(kinds, lambda k: [Read("sweep", _sweep(K.space(), k), _cells(), _status(k))])


def cache_cold(kinds, tmp: Path, **_: Any):
    def run(kind):
        ps = K.space()
        ps.enable_cache(tmp / f"{kind.name}.nc")
        return [Read("cached sweep", _sweep(ps, kind), _cells(), _status(kind))]

    return _each(kinds, run)


def plain_reader(engine: str):
    def run(kinds, tmp: Path, *, outcomes, **_: Any):
        cold = outcomes("cache")  # its files, written once

        def read(kind):
            if isinstance(cold[kind.name], Exception):
                raise cold[kind.name]
            path = Path(outcomes.folder("cache")) / f"{kind.name}.nc"
            return [
                Read(
                    f"xr.open_dataset(engine={engine!r})",
                    _plain(path, engine),
                    _cells(),
                    _status(kind),
                    plain=True,
                )
            ]

        return _each(kinds, read)

    return run


def lazy(kinds, tmp: Path, **_: Any):
    def run(kind):
        path = tmp / f"{kind.name}.nc"
        ps = K.space()
        ps.enable_cache(path)
        first = _sweep(ps, kind, lazy=True)
        ps.disable_cache()
        again = K.space()  # a fresh space on the file: nothing computed, all read lazily
        again.enable_cache(path)
        before = len(K.CALLS)
        reopened = _sweep(again, kind, lazy=True, retry_failed=False)
        called = {a for _, a in K.CALLS[before:]}
        assert called <= {2}, f"the reopened sweep recomputed cells {called}"
        return [
            Read("sweep(lazy=True)", first, _cells(), _status(kind)),
            Read("reopened, lazy", reopened, _cells(), _status(kind)),
        ]

    return _each(kinds, run)


def streamed(kinds, tmp: Path, **_: Any):
    def run(kind):
        path = tmp / f"{kind.name}.nc"
        ps = K.space()
        ps.enable_cache(path, memory_budget=64)
        ds = _sweep(ps, kind)
        big = [
            v
            for v in ds.data_vars.values()
            if v.ndim > 1 and v.dtype.kind in "fiucb" and v[0].nbytes >= 1024
        ]
        for var in big:  # the path is really streamed: big array outputs read from the file
            assert var.chunks is not None, f"{var.name} was not streamed"
        return [
            Read("streamed sweep", ds, _cells(), _status(kind)),
            Read("streamed file", _plain(path), _cells(), _status(kind), plain=True),
        ]

    return _each(kinds, run)


def pooled(kinds, tmp: Path, *, executor=None, **_: Any):
    def run(kind):
        ps = K.space()
        ps.enable_cache(tmp / f"{kind.name}.nc")
        ds = _sweep(ps, kind, executor=executor) if executor else _sweep(ps, kind, workers=2)
        return [Read("pooled sweep", ds, _cells(), _status(kind))]

    return _each(kinds, run)


def dask(kinds, tmp: Path, *, client, **_: Any):
    def run(kind):
        ps = K.space()
        ps.enable_cache(tmp / f"{kind.name}.nc")
        return [Read("dask sweep", _sweep(ps, kind, executor=client), _cells(), _status(kind))]

    return _each(kinds, run)


def killed(kinds, tmp: Path, **_: Any):
    """One child sweeps every kind, SIGKILLed mid-sweep; a new space resumes each file."""
    names = [k.name for k in kinds]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.child", str(tmp), *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, f"the child was not SIGKILLed: {proc.returncode}\n{proc.stderr}"

    def run(kind):
        if not (tmp / f"{kind.name}.blocked").exists():
            raise AssertionError(f"the child's sweep of {kind.name} ended before the kill")
        path = tmp / f"{kind.name}.nc"
        ps = K.space()
        ps.enable_cache(path)
        before = len(K.CALLS)
        ds = _sweep(ps, kind, retry_failed=False)
        called = {a for _, a in K.CALLS[before:]}
        assert called <= {2}, f"resume recomputed cells {called}: the journal lost them"
        return [
            Read("resumed sweep", ds, _cells(), _status(kind)),
            Read("resumed file", _plain(path), _cells(), _status(kind), plain=True),
        ]

    return _each(kinds, run)


def stopped(kinds, tmp: Path, **_: Any):
    """A background sweep stopped while the cell ``a=3`` runs: it is kept, ``a=4`` never runs."""

    def run(kind):
        path = tmp / f"{kind.name}.nc"
        ps = K.space()
        ps.enable_cache(path)
        job = ps.sweep_async(K.FUNCTIONS[kind.name], progress=False)
        blocked = tmp / f"{kind.name}.blocked"
        deadline = time.monotonic() + 60
        while not blocked.exists() and not job.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        job.stop(wait=False)
        # the sweep checks for a stop every 0.2 s, not per cell: a stop within 0.2 s of the
        # last check lets the next cells start (reported with issue 21)
        time.sleep(0.25)
        (tmp / f"{kind.name}.release").touch()
        job.stop(wait=True, timeout=60)
        assert job.done(), "the stopped sweep did not end"
        try:
            ds = job.result()
        except BaseException as exc:  # noqa: BLE001 - how a stopped job ends
            ds = exc
        ps.disable_cache()
        reads = [Read("file after stop", _plain(path), _cells(), _status(kind), plain=True)]
        if isinstance(ds, xr.Dataset):
            reads.append(Read("stopped job's result", ds, _cells(), _status(kind)))
        return reads

    previous = os.environ.get(K.BLOCK_ENV)
    os.environ[K.BLOCK_ENV] = f"{tmp}|3"
    try:
        with warnings.catch_warnings():  # the jobs' threads warn of the failed cell
            warnings.simplefilter("ignore", xs.SweepFailuresWarning)
            return _each(kinds, run)
    finally:
        if previous is None:
            del os.environ[K.BLOCK_ENV]
        else:
            os.environ[K.BLOCK_ENV] = previous


def merged(kinds, tmp: Path, **_: Any):
    def run(kind):
        parts = []
        for job, cells in enumerate(([0, 1], [2, 3])):
            ps = K.space()
            parts.append(tmp / f"{kind.name}.part{job}.nc")
            ps.enable_cache(parts[-1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", xs.SweepFailuresWarning)
                ps.sweep(K.FUNCTIONS[kind.name], cells={"a": cells}, progress=False)
        out = tmp / f"{kind.name}.nc"
        xs.merge_stores(parts, out)
        ps = K.space()
        ps.enable_cache(out)
        before = len(K.CALLS)
        ds = _sweep(ps, kind, retry_failed=False)
        assert {a for _, a in K.CALLS[before:]} <= {2}, "the merged file lost cells"
        return [
            Read("merged file", _plain(out), _cells(), _status(kind), plain=True),
            Read("sweep on the merged file", ds, _cells(), _status(kind)),
        ]

    return _each(kinds, run)


# -- run_process ------------------------------------------------------------------------------
@dataclass
class Calls:
    """What ``run_process(fn, a=a)`` gave: ``a`` -> ("value", v) or ("raised", exception)."""

    results: dict[int, tuple[str, Any]] = field(default_factory=dict)
    #: cells for which ``fn`` was called although they were cached
    recomputed: set[int] = field(default_factory=set)


def _call(ps, kind, a) -> tuple[str, Any]:
    try:
        return "value", ps.run_process(K.FUNCTIONS[kind.name], a=a)
    except BaseException as exc:  # noqa: BLE001 - SkipCell and errors are what we check
        return "raised", exc


def run_process_hit(kinds, tmp: Path, **_: Any):
    def run(kind):
        path = tmp / f"{kind.name}.nc"
        ps = K.space()
        ps.enable_cache(path)
        _sweep(ps, kind)
        ps.disable_cache()
        fresh = K.space()
        fresh.enable_cache(path)
        calls = Calls()
        for a in K.A_VALUES:
            before = len(K.CALLS)
            calls.results[a] = _call(fresh, kind, a)
            if K.STATES[a] == K.COMPUTED and len(K.CALLS) > before:
                calls.recomputed.add(a)
        return calls

    return _each(kinds, run)


def run_process_miss(kinds, tmp: Path, **_: Any):
    def run(kind):
        path = tmp / f"{kind.name}.nc"
        ps = K.space()
        ps.enable_cache(path)
        calls = Calls()
        for a in K.A_VALUES:  # every cell computed by run_process, then stored
            calls.results[a] = _call(ps, kind, a)
        ps.disable_cache()
        fresh = K.space()
        fresh.enable_cache(path)
        for a in K.A_VALUES:  # read back from the file in a new space
            if calls.results[a][0] == "value":
                before = len(K.CALLS)
                again = _call(fresh, kind, a)
                if len(K.CALLS) > before:
                    calls.recomputed.add(a)
                if again[0] == "raised":
                    calls.results[a] = again
        return calls

    return _each(kinds, run)


# -- programs and trees -----------------------------------------------------------------------
def _write(kind: K.Kind, a: int, path: Path) -> None:
    value = kind.make(a)
    how = kind.file[1]
    if how == "json":
        path.write_text(json.dumps(value.tolist() if hasattr(value, "tolist") else value))
    elif how == "text":
        path.write_text(value, encoding="utf-8")
    elif how == "npy":
        np.save(path, value)
    elif how == "png":
        from PIL import Image

        Image.fromarray(value).save(path)
    elif how == "csv":
        value.to_csv(path, index=False)
    elif how == "nc":
        value.to_netcdf(path)
    else:
        raise ValueError(how)


def _output(kind: K.Kind) -> dict[str, str]:
    names = list(kind.expect(0))
    return {names[0] if len(names) == 1 else "table": kind.file[0]}


def _own_names(kind: K.Kind, ds):
    """A table's columns come back as ``table_<column>`` (docs/programs.md): the kind's names."""
    names = list(kind.expect(0))
    if len(names) == 1:
        return ds
    return ds.rename({f"table_{n}": n for n in names if f"table_{n}" in ds.variables})


def command(kinds, tmp: Path, **_: Any):
    """A program (``cp``) per cell copies the kind's file; a missing source fails the cell."""

    def run(kind):
        source = tmp / "source" / kind.name
        for a in (0, 3):
            (source / f"a={a}").mkdir(parents=True)
            _write(kind, a, source / f"a={a}" / kind.file[0])
        prog = xs.command(
            ["cp", str(source / "a={a}" / kind.file[0]), "{workdir}"],
            workdir=str(tmp / "runs" / kind.name / "a={a}"),
            outputs=_output(kind),
            name=kind.fname,
        )
        ps = K.space()
        ps.enable_cache(tmp / f"{kind.name}.nc")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", xs.SweepFailuresWarning)
            ds = ps.sweep(prog, cells={"a": [0, 1, 3]}, progress=False)
        return [Read("xs.command", _own_names(kind, ds), _cells(skip=K.NEVER), _status(kind))]

    return _each(kinds, run)


TREE_CELLS = [
    (0, 0, K.COMPUTED),
    (0, 1, K.COMPUTED),
    (1, 0, K.FAILED),
    (1, 1, K.FAILED),
    (3, 0, K.COMPUTED),
    (3, 1, K.NEVER),
]


def open_tree(kinds, tmp: Path, **_: Any):
    """Runs in ``a={a}/b={b}`` folders: one missing (never computed), unreadable ones fail."""

    def run(kind):
        root = tmp / kind.name
        for a, b, state in TREE_CELLS:
            folder = root / f"a={a}" / f"b={b}"
            if state == K.NEVER:
                continue
            folder.mkdir(parents=True)
            if state == K.FAILED:  # a folder where the file should be: no reader reads it
                (folder / kind.file[0]).mkdir()
            else:
                _write(kind, a, folder / kind.file[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = xs.open_tree(str(root / "a={a}" / "b={b}"), outputs=_output(kind), name=kind.fname)
        cells = [({"a": a, "b": b}, state, a) for a, b, state in TREE_CELLS]
        return [Read("xs.open_tree", _own_names(kind, ds), cells, _status(kind))]

    return _each(kinds, run)


def cleanup(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
