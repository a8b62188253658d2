"""A real one-node SLURM cluster for the tests in this folder (tests/cluster/slurm_up.sh).

The cluster is started once per test session (the script is idempotent) and left running for
other sessions; tests/cluster/slurm_down.sh stops it. Where it cannot start (not root, no
apt), the tests skip with a notice; under CI as root, they fail instead: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """The environment in which sbatch, squeue and scancel talk to the test cluster."""
    up = subprocess.run(
        ["bash", str(HERE / "slurm_up.sh")], capture_output=True, text=True, timeout=300
    )
    must_run = os.environ.get("CI") and os.geteuid() == 0 and shutil.which("apt-get")
    if up.returncode == 2 and not must_run:
        pytest.skip(f"NOTICE: no SLURM cluster here: {up.stderr.strip()}")
    if up.returncode != 0:
        pytest.fail(f"the SLURM cluster did not start ({up.returncode}): {up.stderr.strip()}")
    conf = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    return {**os.environ, "SLURM_CONF": conf}


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    """Run a SLURM client command; its stdout, or a failure with its stderr."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


def wait_gone(job: str, env: dict[str, str], timeout: float = 180) -> None:
    """Wait until no task of ``job`` (an id, or ``id_k``) is pending or running."""
    deadline = time.monotonic() + timeout
    while True:
        listed = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%i"], env=env, capture_output=True, text=True
        )
        if listed.returncode != 0 or not listed.stdout.strip():  # done (or already purged)
            return
        assert time.monotonic() < deadline, f"job {job} still queued after {timeout} s"
        time.sleep(0.2)
