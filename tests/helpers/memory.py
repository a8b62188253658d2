"""Peak resident memory, measured so that a test can fail.

``ru_maxrss`` cannot tell what code did after a process grew: it is a high-water mark since
the process started, and on Linux it even keeps the parent's mark across fork and exec (a
child of a big pytest process reads that). ``VmHWM`` is the current address space's own mark,
and writing ``5`` to ``/proc/self/clear_refs`` resets it to the current size.
"""

from __future__ import annotations


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} is not in /proc/self/status")


def start_peak() -> int:
    """Reset the peak to now; returns the resident bytes it starts from."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def peak_since(start: int) -> int:
    """Bytes the peak grew by since :func:`start_peak` returned ``start``."""
    return _status("VmHWM") - start
