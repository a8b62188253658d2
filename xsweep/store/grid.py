"""The union of a parameter's values in a file and in a space (growing a grid)."""

from __future__ import annotations

import numpy as np

from ..errors import (
    StoreMismatchError,
)


def _union(
    path: str, name: str, file_values: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The union of a parameter's values in the file and in the space.

    Returns the union and, when it differs from the file's values, the new position of each
    of the file's values. Sorted grids stay sorted; otherwise new values go at the end.
    """
    if file_values.shape == values.shape and np.array_equal(file_values, values):
        return file_values, None
    kinds = {file_values.dtype.kind, values.dtype.kind}
    if not (kinds <= {"i", "u", "f"} or len(kinds) == 1):
        raise StoreMismatchError(
            f"The cache file {path} has parameter {name!r} with values {_short(file_values)}, "
            f"of another kind than this space's {_short(values)}. Nothing was changed. Use "
            "another cache path, or rename the parameter."
        )
    known = set(file_values.tolist())
    new = [v for v in values.tolist() if v not in known]
    if not new:
        return file_values, None
    dtype = np.result_type(file_values, values) if kinds <= {"i", "u", "f"} else values.dtype
    union = np.concatenate([file_values.astype(dtype), np.asarray(new, dtype=dtype)])
    if kinds <= {"i", "u", "f"} and _increasing(file_values) and _increasing(values):
        union = np.sort(union)
    lookup = {v: i for i, v in enumerate(union.tolist())}
    positions = np.array([lookup[v] for v in file_values.tolist()], dtype=np.int64)
    union.setflags(write=False)
    return union, positions


def _increasing(values: np.ndarray) -> bool:
    return values.size < 2 or bool(np.all(np.diff(values) > 0))


def _short(values: np.ndarray) -> str:
    items = values.tolist()
    return repr(items) if len(items) <= 8 else f"[{items[0]!r}, ..., {items[-1]!r}] ({len(items)})"
