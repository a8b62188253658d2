"""Looking at a space's results: status(), seconds(), failures(), explore(), grid_view()."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import xarray as xr

from ..file_format import COMPUTED, FLAG_MEANINGS, FLAG_VALUES
from ..functions.binding import Binding
from .core import SpaceCore

if TYPE_CHECKING:  # annotations only: the views are built on request (see the layers)
    import pandas as pd

    from ..views.gridview import GridView
    from ..views.widgets import SpaceExplorer
    from .parameter_space import ParameterSpace


class CellsNow(NamedTuple):
    """A live look at a function's cells over the space's values (:meth:`Watch.now`).

    ``status`` and ``seconds`` over the function's dims; ``values``: one numeric scalar
    output's values (or None); ``message_of(indices)``: a failed cell's error message;
    ``outputs``: the names of the function's outputs.
    """

    status: np.ndarray
    values: np.ndarray | None
    message_of: Callable[[dict[str, int]], str]
    outputs: tuple[str, ...]
    seconds: np.ndarray


class Watch:
    """One function's cells in a space, looked at live (``ps.watch(fn)``).

    The function's version is the one it had when the watch began, so that a view keeps
    showing the cells it was opened on. For views that refresh while a sweep writes:
    :meth:`now` takes no lock.
    """

    def __init__(self, space: Any, binding: Binding) -> None:
        self._space = space
        self._binding = binding

    @property
    def name(self) -> str:
        """The name the function's results are stored under."""
        return self._binding.name

    @property
    def key(self) -> str:
        """The function's key in the store (its name, or its qualified name)."""
        return self._binding.key

    @property
    def dims(self) -> tuple[str, ...]:
        """The parameters the function's results are stored over, in order."""
        return self._binding.dims

    def now(self, output: str | None = None) -> CellsNow:
        """Statuses (and one numeric scalar ``output``'s values) as of now; see CellsNow."""
        return self._space._cells_now(self._binding, output)


class ViewMethods(SpaceCore):
    """What :class:`~xsweep.space.ParameterSpace` shows of its results (a mixin of it)."""

    def failures(self, fn: Callable[..., Any]) -> pd.DataFrame:
        """The failed cells of ``fn`` with their error messages, as a pandas DataFrame.

        Reads the cache when it is on, else the last sweep of ``fn`` in this space.

        Examples
        --------
        >>> import warnings, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2])])
        >>> def inverse(a):
        ...     return 1 / a
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds = ps.sweep(inverse)
        >>> ps.failures(inverse)
           a                                  error
        0  0  ZeroDivisionError: division by zero
        """
        import pandas as pd

        binding = self._binding(fn)
        store = self._results.for_reading(binding.key)
        rows = store.failures(binding.key) if store is not None else []
        functions = store.functions() if store is not None else []
        dims = next((f.dims for f in functions if f.key == binding.key), binding.dims)
        return pd.DataFrame(
            [{k: v for k, v in row.items() if k != "function"} for row in rows],
            columns=[*dims, "error"],
        )

    def widgets(self) -> Any:
        """A box of notebook controls, one per parameter, synced with their ``.value``.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2]),
        ...                         xs.Parameter("m", values=["x", "y"])])
        >>> [type(c).__name__ for c in ps.widgets().children]
        ['SelectionSlider', 'ToggleButtons']
        """
        from ..views.widgets import space_widgets

        return space_widgets(cast("ParameterSpace", self))  # the mixin's only class

    def explore(self, fn: Callable[..., Any], *, background: bool = True) -> SpaceExplorer:
        """Controls for ``fn``'s parameters and a live view of ``ps.run_process(fn)``.

        Images show as images, Matplotlib figures as figures, 1-D and 2-D arrays as plots,
        scalars and dicts as text. Cached cells show at once without calling ``fn``; other
        cells are computed (and cached when the cache is on). With ``background=True`` the
        view computes in a thread and skips stale slider positions.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
        >>> view = ps.explore(lambda a: {"square": a * a}, background=False)
        >>> view.controls["a"].value = 3
        >>> "9" in view.text.value
        True
        """
        from ..views.widgets import SpaceExplorer

        # Re-running a notebook cell replaces its view rather than leaving the old one live.
        key = self._binding(fn, computing=True).key
        old = self._views.pop(key, None)
        if old is not None:
            old.close()
        space = cast("ParameterSpace", self)  # the mixin's only class
        view = self._views[key] = SpaceExplorer(space, fn, background=background)
        return view

    def status(self, fn: Callable[..., Any]) -> xr.DataArray:
        """Each cell's status for ``fn`` over the space's values, read without waiting.

        Codes: 0 not computed, 1 computed, 2 failed, 3 computed without a value (the
        function returned None); a cell of another version of ``fn``'s code reads 0. Reads
        no output, takes no lock: safe and cheap while a sweep (in the background, or in
        another thread) fills the grid. The cache when it is on, else ``fn``'s last sweep.

        Examples
        --------
        >>> import warnings, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
        >>> def inverse(a):
        ...     return 1 / (a - 2)
        >>> ps.status(inverse).values.tolist()
        [0, 0, 0, 0]
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     _ = ps.sweep(inverse, cells={"a": [1, 2, 3]})
        >>> ps.status(inverse).values.tolist()
        [1, 2, 1, 0]
        """
        binding = self._binding(fn)
        return xr.DataArray(
            self._cells_now(binding, None).status,
            dims=binding.dims,
            coords={d: self._params[d].values for d in binding.dims},
            name=f"{binding.name}_status",
            attrs={"flag_values": list(FLAG_VALUES), "flag_meanings": FLAG_MEANINGS},
        )

    def seconds(self, fn: Callable[..., Any]) -> xr.DataArray:
        """How long each of ``fn``'s cells took, in seconds (NaN: not computed).

        Timings are not in the Datasets sweeps return (they would make two runs' results
        differ); they are here, and in the cache file as ``<name>_seconds``. Read without
        waiting for a running sweep, like :meth:`status`.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> def square(a):
        ...     return a * a
        >>> _ = ps.sweep(square, cells={"a": [2]})
        >>> seconds = ps.seconds(square)
        >>> bool(seconds.isnull().sel(a=1)), bool(seconds.sel(a=2) >= 0)
        (True, True)
        """
        binding = self._binding(fn)
        seen = self._cells_now(binding, None)
        return xr.DataArray(
            seen.seconds,
            dims=binding.dims,
            coords={d: self._params[d].values for d in binding.dims},
            name=f"{binding.name}_seconds",
            attrs={"long_name": f"time taken to compute each cell of {binding.key}", "units": "s"},
        )

    def watch(self, fn: Callable[..., Any]) -> Watch:
        """Look at ``fn``'s cells live, as views that refresh during a sweep do.

        ``watch.now()`` gives the statuses over the space's values (and ``now(output)`` one
        numeric scalar output's values) without waiting for a running sweep.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
        >>> def square(a):
        ...     return a * a
        >>> watch = ps.watch(square)
        >>> watch.dims, watch.now().status.tolist()
        (('a',), [0, 0, 0])
        >>> _ = ps.sweep(square, cells={"a": [2, 3]})
        >>> watch.now("square").values.tolist()
        [nan, 4.0, 9.0]
        """
        return Watch(self, self._binding(fn))

    def _cells_now(self, binding: Binding, output: str | None) -> CellsNow:
        """Statuses (and one scalar output) over the space's own values, live."""
        with self._growing:  # the space's values and the store's grid are of one moment
            return self._cells_seen(binding, output)

    def _cells_seen(self, binding: Binding, output: str | None) -> CellsNow:
        shape = tuple(len(self._params[d].values) for d in binding.dims)
        nothing = CellsNow(
            np.zeros(shape, np.int8), None, lambda indices: "", (), np.full(shape, np.nan)
        )
        store = self._results.for_reading(binding.key)
        found = None
        if store is not None:
            found = store.peek(binding.key, binding.dims, binding.fingerprint, output)
        if found is None:
            return nothing
        assert store is not None  # found came from it
        try:
            where = np.ix_(*[store.grid.positions[d] for d in binding.dims])
            status, seconds = found.status[where], found.seconds[where]
            values = None
            if found.values is not None:  # a cell without a value is never a number
                values = np.where(status == COMPUTED, found.values[where], np.nan)
        except (IndexError, KeyError, ValueError):  # the grid changed under us
            return nothing._replace(outputs=found.outputs)

        def message_of(indices: dict[str, int]) -> str:
            return found.errors.get(store.grid.flat_index(binding.dims, indices), "")

        return CellsNow(status, values, message_of, found.outputs, seconds)

    def grid_view(
        self,
        fn: Callable[..., Any],
        *,
        x: str | None = None,
        y: str | None = None,
        facet: str | None = None,
        show: str = "status",
        interval: float | None = 0.5,
    ) -> GridView:
        """A live map of ``fn``'s whole grid: every cell's status (or a scalar output).

        Cells are coloured by status (not computed, computed, failed, no value) or, with
        ``show="name"``, by that numeric scalar output. The map follows a sweep as it fills
        the grid (``sweep_async`` or ``sweep`` in another thread; it reads without waiting
        for it). Sliders under it choose a cell: its output (an image, a plot, a value) or
        its failure message shows below. Needs ipywidgets.

        Parameters
        ----------
        fn : callable
            As for :meth:`sweep`.
        x, y, facet : str, optional
            The parameters across, down and in side-by-side panels; by default ``fn``'s last,
            second-to-last and third-to-last. Its other parameters are held at their current
            values (controls above the map move them).
        show : str, default "status"
            ``"status"``, or the name of a numeric scalar output to colour by (viridis).
        interval : float or None, default 0.5
            Seconds between looks at the results; None: only when :meth:`GridView.update`
            is called.

        Returns
        -------
        xsweep.views.gridview.GridView

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2]),
        ...                         xs.Parameter("b", values=[1, 2, 3])])
        >>> view = ps.grid_view(lambda a, b: a * b, interval=None)
        >>> view.x, view.y
        ('b', 'a')
        >>> view.close()
        """
        from ..views.gridview import GridView

        # Re-running a notebook cell replaces its view (once the new one is made).
        key = ("grid", self._binding(fn).key)
        space = cast("ParameterSpace", self)  # the mixin's only class
        view = GridView(space, fn, x=x, y=y, facet=facet, show=show, interval=interval)
        old = self._views.pop(key, None)
        if old is not None:
            old.close()
        self._views[key] = view
        return view

    def is_computed(self, fn: Callable[..., Any], **values: Any) -> bool:
        """Whether the cache holds ``fn``'s cell at these values (default: current values).

        True exactly when ``run_process`` would answer from the cache: a cell of another
        version of ``fn``'s code (its fingerprint changed) does not count.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.is_computed(lambda a: a)  # no cache enabled
        False
        """
        binding = self._binding(fn)
        with self._growing:  # the indices and the store's grid are of one moment
            store = self._results.cached()
            if store is None:
                return False
            indices = {name: self[name].index(v) for name, v in values.items()}
            return store.contains(
                binding.key, binding.dims, binding.fingerprint, self._cell_indices(binding, indices)
            )
