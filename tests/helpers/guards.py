"""A guard against tests that never end, shared by the process and parallel tests."""

from __future__ import annotations

import contextlib
import signal

import pytest

#: Seconds after which a test that waits for something calls it a hang. A guard against tests
#: that never end, not a speed requirement: no assertion depends on how long anything took.
HANG = 120.0


@contextlib.contextmanager
def hang_guard(what: str, seconds: float = HANG):
    """Fail with ``what`` if the block has not ended after ``seconds`` (SIGALRM; main thread)."""

    def expired(signum, frame):
        pytest.fail(f"{what}: still waiting after {seconds:.0f} s, so it hangs", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
