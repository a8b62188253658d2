"""Ctrl-C in tests, wherever the test command was started.

A process started in the background (``cmd &`` from a script, ``nohup``, some CI runners)
starts with SIGINT ignored, its children inherit that, and Python then installs no handler
for it: a SIGINT does nothing, and a test waiting for ``KeyboardInterrupt`` waits in vain.
So a test that sends SIGINT installs the handler it relies on, in its own process
(:func:`ctrl_c_raises`, which puts the old one back) or first thing in the child it
interrupts (:data:`CHILD_CTRL_C`). ``tests/test_interrupts.py`` runs those tests with SIGINT
ignored.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

#: The first line of a child script that is sent SIGINT: Ctrl-C raises KeyboardInterrupt
#: there, as in a terminal, even when the test command was started with SIGINT ignored.
CHILD_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"


@contextlib.contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """Within the block, SIGINT to this process raises KeyboardInterrupt; then as before."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
