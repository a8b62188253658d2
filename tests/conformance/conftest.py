"""Shared machinery of the conformance matrix: options, the dask cluster, memoised paths.

``pytest --slow`` (or ``XSWEEP_SLOW=1``) runs the long variant as well.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from . import paths as P
from .table import BY_ID, paths

_RUNNERS = {
    "sweep": P.no_cache,
    "cache": P.cache_cold,
    "netcdf4": P.plain_reader("netcdf4"),
    "h5netcdf": P.plain_reader("h5netcdf"),
    "resume": P.killed,
    "lazy": P.lazy,
    "stream": P.streamed,
    "workers": P.pooled,
    "dask": P.dask,
    "dask-processes": P.dask,
    "hit": P.run_process_hit,
    "miss": P.run_process_miss,
    "merge": P.merged,
    "stopped": P.stopped,
    "command": P.command,
    "tree": P.open_tree,
}
assert set(_RUNNERS) == set(BY_ID), "every path of table.PATHS needs a runner"

#: (kind, path, state) -> outcome word, filled by the tests, read by the summary
RESULTS: dict[tuple[str, str, str], str] = {}


def pytest_addoption(parser):
    try:
        parser.addoption("--slow", action="store_true", help="run the long conformance matrix")
    except ValueError:  # declared by another conftest
        pass


def pytest_configure(config):
    # the test modules read it when they are collected (parameters, hypothesis settings)
    if config.getoption("--slow", default=False):
        os.environ["XSWEEP_SLOW"] = "1"


@pytest.fixture(scope="session")
def dask_processes():
    """A cluster of 2 worker processes (the long variant)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


class Outcomes:
    """Each path run once for every kind, on first use; ``outcomes(path_id)[kind_name]``."""

    def __init__(self, factory, request):
        self._factory = factory
        self._request = request
        self._done: dict[str, dict] = {}
        self._folders: dict[str, str] = {}

    def folder(self, path_id: str) -> str:
        if path_id not in self._folders:
            self._folders[path_id] = str(self._factory.mktemp(path_id))
        return self._folders[path_id]

    def __call__(self, path_id: str) -> dict:
        if path_id not in self._done:
            from pathlib import Path

            from .kinds import KINDS

            kinds = [k for k in KINDS if k.file is not None or not BY_ID[path_id].from_files]
            extra = {}
            if path_id == "dask":
                extra["client"] = self._request.getfixturevalue("dask_client")
            elif path_id == "dask-processes":
                extra["client"] = self._request.getfixturevalue("dask_processes")
            self._done[path_id] = _RUNNERS[path_id](
                kinds, Path(self.folder(path_id)), outcomes=self, **extra
            )
        return self._done[path_id]


@pytest.fixture(scope="session")
def outcomes(tmp_path_factory, request) -> Outcomes:
    return Outcomes(tmp_path_factory, request)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    from .kinds import KINDS, STATE_NAMES
    from .table import applies

    matrix = Counter(v for (_, _, state), v in RESULTS.items() if state in STATE_NAMES)
    refused = Counter(v for (_, _, state), v in RESULTS.items() if state == "refused")
    run = paths()
    size = len(KINDS) * len(run) * len(STATE_NAMES)
    not_applicable = sum(not applies(k, p, s) for k in KINDS for p in run for s in STATE_NAMES)
    write = terminalreporter.write_line
    terminalreporter.section("xsweep conformance matrix")
    write(
        f"{len(KINDS)} return kinds x {len(run)} paths x {len(STATE_NAMES)} cell states = "
        f"{size} combinations; this run: {matrix['checked']} checked and right, "
        f"{matrix['known bug']} known bugs (strict xfail), {matrix['wrong']} wrong, "
        f"{not_applicable} not applicable (see docs/outputs.md)."
    )
    if refused:
        write(
            f"refused return values x ways to compute them: {sum(refused.values())} combinations; "
            f"{refused['refused, nothing written']} refused before anything was written, "
            f"{refused['known bug']} known bugs (strict xfail), {refused['wrong']} wrong."
        )
