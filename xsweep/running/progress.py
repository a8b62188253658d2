"""A progress bar for sweeps: counts of cached, computed and failed cells, and an ETA.

It uses ``tqdm.auto`` (a widget in Jupyter, text in a terminal). It is on by default only when
a person is watching: in a Jupyter kernel, or when standard error is a terminal, and not when
the ``CI`` environment variable is set. Logs and batch jobs get no bar unless asked with
``progress=True``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tqdm.std


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_wanted(progress: bool | None) -> bool:
    """Whether to show a bar: ``progress`` if given, else the default rule above."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    return _in_notebook() or sys.stderr.isatty()


class Progress:
    """A tqdm bar over the selected cells of one sweep.

    Examples
    --------
    >>> from xsweep.running.progress import Progress
    >>> bar = Progress("area", file=open(__import__("os").devnull, "w"))
    >>> bar.start(total=10, cached=4)
    >>> bar.update(computed=5, failed=1)
    >>> bar.counts
    {'cached': 4, 'computed': 5, 'failed': 1}
    >>> bar.close()
    """

    def __init__(self, description: str, **tqdm_kwargs: Any) -> None:
        self.description = description
        self.tqdm_kwargs = tqdm_kwargs
        self.bar: tqdm.std.tqdm[Any] | None = None
        self.counts = {"cached": 0, "computed": 0, "failed": 0}

    def start(self, total: int, cached: int) -> None:
        try:
            import ipywidgets  # noqa: F401  (tqdm.auto needs it for the notebook widget)
            from tqdm.auto import tqdm
        except ImportError:
            from tqdm import tqdm  # type: ignore[assignment]  # the base class of tqdm.auto's
        self.counts["cached"] = cached
        self.bar = tqdm(
            total=total,
            initial=cached,
            desc=self.description,
            unit="cell",
            dynamic_ncols=True,
            **self.tqdm_kwargs,
        )
        self.bar.set_postfix(self.counts, refresh=False)

    def update(self, computed: int, failed: int) -> None:
        if self.bar is None:
            return
        self.counts["computed"] = computed
        self.counts["failed"] = failed
        self.bar.n = self.counts["cached"] + computed + failed
        self.bar.set_postfix(self.counts, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
