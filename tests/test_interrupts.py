"""The Ctrl-C tests pass wherever the test command is started.

Started in the background (``cmd &`` from a script, ``nohup``, some CI runners), a process
begins with SIGINT ignored and Python installs no handler for it; its children inherit that.
The tests that send SIGINT then waited in vain for ``KeyboardInterrupt`` unless they install
the handler they rely on (``tests/helpers/interrupts.py``). This runs them that way.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS / "helpers") not in sys.path:
    sys.path.insert(0, str(TESTS / "helpers"))

from interrupts import ctrl_c_raises  # noqa: E402

#: Every test that sends SIGINT to itself or to a child, expecting KeyboardInterrupt there.
CTRL_C_TESTS = [
    "test_command.py::test_ctrl_c_kills_the_running_program",
    "test_orphans.py::test_ctrl_c_still_stops_the_workers",
    "test_parallel.py::test_ctrl_c_stops_the_pool_at_once_and_keeps_results",
    "test_small_fixes.py::test_ctrl_c_says_how_many_cells_are_safe_and_that_the_next_sweep_resumes",
]

#: A SIGINT sent: to a child, to a pid, or to a thread of this process.
SENDS_SIGINT = re.compile(r"(send_signal|os\.kill|killpg|pthread_kill)\(.*SIGINT")


def test_every_test_file_that_sends_sigint_is_run_here():
    # tests/cluster needs a SLURM cluster and only restores a handler dask_jobqueue replaces.
    sending = {
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.parts[len(TESTS.parts)] != "cluster" and SENDS_SIGINT.search(path.read_text())
    }
    listed = {test.split("::")[0] for test in CTRL_C_TESTS}
    assert sending == listed, (
        "a test file sends SIGINT but its Ctrl-C test is not in CTRL_C_TESTS (or the other way "
        f"round): add it, and install the handler it relies on: {sorted(sending ^ listed)}"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="test_orphans reads /proc")
def test_the_ctrl_c_tests_pass_when_started_with_sigint_ignored(tmp_path):
    # exec keeps an ignored signal ignored: this is how `nohup pytest` or `pytest &` start.
    start = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    command = [sys.executable, "-c", start, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--rootdir", str(TESTS.parent), "--basetemp", str(tmp_path / "runs")]
    done = subprocess.run(
        [*command, *(str(TESTS / test) for test in CTRL_C_TESTS)],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = done.stdout.strip().splitlines()[-1:] or [done.stderr[-2000:]]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{len(CTRL_C_TESTS)} passed" in summary[0], done.stdout[-4000:]


def test_ctrl_c_raises_puts_the_old_handler_back():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_raises():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
