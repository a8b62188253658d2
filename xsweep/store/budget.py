"""The memory budget: how many bytes of results a store keeps in memory.

A cached function whose array outputs over its grid need more than the budget is streamed
(see :mod:`xsweep.store.ondisk`); an in-memory sweep (no cache) whose results cannot fit in
this machine's memory is refused before it computes more than its first cell.
"""

from __future__ import annotations

import os
import re

from ..errors import ResultsTooLargeError

#: The default budget's ceiling (the budget is this or a quarter of memory, the smaller).
DEFAULT_CEILING = 1 << 30

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def physical_memory() -> int:
    """Bytes of memory this machine has (8 GiB when it cannot tell)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def available_memory() -> int:
    """Bytes of memory available to new allocations now (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory() // 2


def default_budget() -> int:
    """1 GiB, or a quarter of this machine's memory if that is less."""
    return min(DEFAULT_CEILING, physical_memory() // 4)


def parse_budget(budget: int | str | None) -> int:
    """Bytes from a budget given as bytes, a string such as ``"512MiB"``, or None (default).

    Examples
    --------
    >>> parse_budget("64MiB")
    67108864
    >>> parse_budget(10_000)
    10000
    >>> parse_budget("a lot")
    Traceback (most recent call last):
    ...
    ValueError: memory_budget='a lot' is not a size: give bytes (an int) or a string such as ...
    """
    if budget is None:
        return default_budget()
    if isinstance(budget, bool):
        raise ValueError(f"memory_budget={budget!r} is not a size: give bytes or '512MiB'.")
    if isinstance(budget, int):
        value = budget
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(budget))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(
                f"memory_budget={budget!r} is not a size: give bytes (an int) or a string "
                "such as '512MiB' or '2GB' (units: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)."
            )
        value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"memory_budget={budget!r} must be more than 0 bytes.")
    return value


def size_text(nbytes: float) -> str:
    """``nbytes`` for people: ``'2.6 GiB'``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} bytes"


def check_fits(name: str, need: int, cells: int) -> None:
    """Refuse an in-memory sweep whose results cannot fit in memory (see the module)."""
    available = available_memory()
    if need <= available:
        return
    raise ResultsTooLargeError(
        f"The results of {name} need {size_text(need)} of memory ({cells:,} cells of "
        f"{size_text(need / max(cells, 1))}), more than this machine has available "
        f"({size_text(available)}), and a sweep without a cache keeps its results in memory. "
        "Nothing was stored. Give the space a cache, e.g. ps.enable_cache('results.nc'): "
        "results beyond its memory budget then go straight to the file, and the sweep "
        "returns a Dataset that reads them lazily."
    )
