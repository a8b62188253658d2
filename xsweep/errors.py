"""Exception and warning classes raised by xsweep.

Every message says what was wrong and what to do about it. The classes derive from the
built-in exception a user would expect (``ValueError`` for bad arguments, ``OSError`` for
file problems) so that generic ``except`` clauses keep working.
"""

from __future__ import annotations

import os
import sys
import types
import warnings


class XsweepError(Exception):
    """Base class of every error raised by xsweep."""


class ParameterError(XsweepError, ValueError):
    """A parameter or parameter space was declared or used wrongly."""


class SweepError(XsweepError, ValueError):
    """A function cannot be swept over the space (arguments, ``params=``, options)."""


class OutputError(XsweepError, TypeError):
    """A function returned something xsweep cannot store, or a cell's output does not match."""


class UnstorableValueError(OutputError):
    """A value of the right structure that no file can hold (text with a NUL): recomputing
    with another structure cannot help, so its message gives no such advice."""


class CellError(XsweepError):
    """A cell's function raised while ``errors="raise"`` was in effect.

    The original exception is attached as ``__cause__``; ``cell`` holds the parameter values.
    """

    def __init__(self, message: str, cell: dict):
        super().__init__(message)
        self.cell = cell


class CommandError(XsweepError, RuntimeError):
    """A program run for a cell failed: a non-zero exit, a timeout, or an output missing or
    unreadable (see :func:`xsweep.command`); the cell is recorded as failed with this message."""


class SkipCell(Exception):  # noqa: N818 - a signal, not an error: the cell stays as it is
    """Raise it in a swept function to leave the cell not computed: nothing is recorded.

    For combinations that make no sense, or (:func:`xsweep.open_tree`) runs that are not
    there. A later sweep asks for the cell again.
    """


class StoreError(XsweepError, OSError):
    """The cache file cannot be used (not ours, unreadable, or for another grid)."""


class ResultsTooLargeError(StoreError, MemoryError):
    """The results of an in-memory sweep cannot fit in memory: enable a cache."""


class StoreMismatchError(StoreError):
    """The cache file holds results for a different grid or function layout."""


class FunctionChangedError(StoreMismatchError):
    """The cache holds results of another version of the function's code."""


class StoreLockedError(StoreError):
    """Another process or parameter space is writing the cache file right now."""


class StoreReadOnlyError(StoreError):
    """The cache file's folder cannot be written; cached cells can still be read."""


class PartsIncompleteError(StoreError):
    """Part files to merge lack parts or cells, and the merge was asked to require them all
    (``merge_stores(..., require_complete=True)``, ``xsweep merge --require-complete``)."""


class PartsIncompleteWarning(UserWarning):
    """Part files were merged although some parts are missing or lack cells: those cells
    are not computed in the merged file."""


class DamagedSideFileWarning(UserWarning):
    """A file next to the cache file was damaged or not made by xsweep; it was ignored."""


class SweepFailuresWarning(UserWarning):
    """Some cells of a sweep raised; they are recorded as failed."""


def warn_user(message: str, category: type[Warning]) -> None:
    """Warn, pointing at the user's line that called into xsweep (not at xsweep itself)."""
    here = os.path.dirname(os.path.abspath(__file__))
    level = 2  # stacklevel 2 is the frame that called warn_user
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and (
        os.path.abspath(frame.f_code.co_filename).startswith(here + os.sep)
        or frame.f_code.co_filename.endswith("contextlib.py")
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
