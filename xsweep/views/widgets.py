"""Notebook widgets: a control per parameter, and live views of a space or a finished Dataset.

Needs ipywidgets (``pip install 'xsweep-nc[notebook]'``). Views show images as images, figures as
figures, and scalars and dicts as a small table. A view computes in a background thread and
drops stale requests: while one cell is being computed, slider moves only update what is
wanted next, so the display never replays a queue of old positions.
"""

from __future__ import annotations

import html
import io
import threading
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..errors import XsweepError
from ..file_format import is_bookkeeping
from .plotting import holds_pixels

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

    from ..parameters.parameter import Parameter
    from ..space.parameter_space import ParameterSpace


def require_ipywidgets() -> types.ModuleType:
    """The ipywidgets module, or an ``XsweepError`` saying how to install it."""
    try:
        import ipywidgets
    except ImportError:
        raise XsweepError(
            "Widgets need ipywidgets, which is not installed. Install it with "
            "pip install 'xsweep-nc[notebook]'."
        ) from None
    return ipywidgets


# ---------------------------------------------------------------------------------------------
# One control per parameter
# ---------------------------------------------------------------------------------------------
def value_label(value: Any) -> str:
    """A grid value as a control shows it: floats short (``%g``), the rest as ``str``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def parameter_widget(p: Parameter) -> Any:
    """The control that fits ``p``, kept in sync with ``p.value`` both ways.

    Numbers get a selection slider over the values (ints stay ints), strings a dropdown (or
    toggle buttons for up to four values), bools a checkbox. Moving the control sets
    ``p.value`` (callbacks fire); setting ``p.value`` moves the control.

    Examples
    --------
    >>> import xsweep as xs
    >>> n = xs.Parameter("n", values=[1, 2, 4])
    >>> w = n.widget()
    >>> w.value = 4
    >>> n.value
    4
    >>> n.value = 2
    >>> w.value
    2
    """
    w = require_ipywidgets()
    values = p.values.tolist()
    kind = p.values.dtype.kind
    description = p.name if not p.units else f"{p.name} [{p.units}]"
    common = {"description": description, "style": {"description_width": "initial"}}
    if kind == "b" and len(values) <= 2:
        # A single-valued bool cannot be toggled: show it, but disabled.
        control = w.Checkbox(value=bool(p.value), disabled=len(values) == 1, **common)
    elif kind == "U":
        cls = w.ToggleButtons if len(values) <= 4 else w.Dropdown
        control = cls(options=values, value=p.value, **common)
    else:
        options = [(value_label(v), v) for v in values]
        control = w.SelectionSlider(
            options=options, value=p.value, continuous_update=True, **common
        )
    if p.description:
        control.tooltip = p.description

    def from_control(change: dict) -> None:
        if change["new"] != p.value:
            p.value = change["new"]

    def from_parameter(value: Any) -> None:
        if control.value != value:
            control.value = value

    control.observe(from_control, names="value")
    p.watch(from_parameter)  # also hears silent moves (run_process answering from the cache)

    def unlink() -> None:
        """Detach the control from the parameter (closing a view calls this)."""
        control.unobserve(from_control, names="value")
        p.unwatch(from_parameter)

    control._xsweep_unlink = unlink
    return control


def space_widgets(space: ParameterSpace, names: list[str] | None = None) -> Any:
    """A box with one control per parameter (all, or ``names``).

    Examples
    --------
    >>> import xsweep as xs
    >>> from xsweep.views.widgets import space_widgets
    >>> ps = xs.ParameterSpace(
    ...     [xs.Parameter("a", values=[1, 2]), xs.Parameter("on", values=[True, False])]
    ... )
    >>> len(space_widgets(ps, ["on"]).children)
    1
    """
    w = require_ipywidgets()
    names = list(space.dims) if names is None else names
    return w.VBox([space[n].widget() for n in names])


# ---------------------------------------------------------------------------------------------
# Turning a value into something to show
# ---------------------------------------------------------------------------------------------
def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _figure_png(fig: matplotlib.figure.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _as_image(value: Any) -> np.ndarray | None:
    """``value`` as an RGB(A) uint8 image if it is one, else None."""
    arr = value.values if isinstance(value, xr.DataArray) else value
    if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        return None
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f" and isinstance(value, xr.DataArray) and holds_pixels(value):
        # a uint8 image of a sweep with holes: 0-255 as float, NaN where no value
        return np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
    if arr.dtype.kind == "f" and np.nanmin(arr) >= 0 and np.nanmax(arr) <= 1:
        return (np.nan_to_num(arr) * 255).round().astype(np.uint8)
    return None


def _plot_png(da: xr.DataArray) -> bytes:
    import matplotlib

    matplotlib.use(matplotlib.get_backend())
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5, 3.5), dpi=80)
    da.plot()  # type: ignore[call-arg]  # xarray's plot accessor: mypy misreads its __call__
    return _figure_png(fig)


def render(value: Any) -> tuple[str, Any]:
    """``("png", bytes)`` for images, figures and plottable arrays; ``("html", str)`` else.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.views.widgets import render
    >>> render({"x": 1.5})
    ('html', '<table><tr><th>x</th><td>1.5</td></tr></table>')
    >>> render(np.zeros((2, 2, 3), np.uint8))[0]
    'png'
    """
    image = _as_image(value)
    if image is not None:
        return "png", _png(image)
    if type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        return "png", _figure_png(value)
    if isinstance(value, xr.Dataset):
        return "html", value._repr_html_()
    if isinstance(value, (xr.DataArray, np.ndarray)) and np.ndim(value) in (1, 2):
        da = value if isinstance(value, xr.DataArray) else xr.DataArray(value)
        return "png", _plot_png(da)
    if isinstance(value, dict):
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>"
            for k, v in value.items()
        )
        return "html", f"<table>{rows}</table>"
    return "html", f"<pre>{html.escape(_text(value))}</pre>"


def place(kind: str, data: Any, image: Any, text: Any, area: Any) -> None:
    """Show what :func:`render` gave in ``area``: the ``image`` widget or the ``text`` one."""
    if kind == "png":
        image.value = data
        area.children = [image]
    else:
        text.value = data
        area.children = [text]


def _text(value: Any) -> str:
    if isinstance(value, xr.DataArray):
        value = value.values
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------
class _View:
    """Controls, a status line and a display area; shows ``self._value(wanted)``."""

    def __init__(self, controls: dict[str, Any], background: bool) -> None:
        w = require_ipywidgets()
        self.controls = controls
        self.image = w.Image(format="png", layout={"max_width": "100%"})
        self.text = w.HTML()
        self.status = w.HTML()
        #: The status line as plain text: which cell is shown, where it came from, how long.
        self.message = ""
        self.area = w.Box([self.text])
        self.box = w.VBox([*controls.values(), self.status, self.area])
        self.background = background
        self.shown = 0  # how many displays were made (for tests and curious users)
        self.closed = False
        self._lock = threading.Lock()
        self._wanted: dict[str, Any] | None = None
        self._worker: threading.Thread | None = None
        for control in controls.values():
            control.observe(lambda change: self.refresh(), names="value")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    def _current(self) -> dict[str, Any]:
        return {name: c.value for name, c in self.controls.items()}

    def refresh(self) -> None:
        """Show the cell for the controls' current values (now, or in the background)."""
        if self.closed:
            return
        with self._lock:
            self._wanted = self._current()
            if self._worker is not None:
                return  # the running worker picks up the newest request before it stops
            if self.background:
                self._worker = threading.Thread(target=self._work, daemon=True)
                self._worker.start()
                return
        self._work()

    def _work(self) -> None:
        while True:
            with self._lock:
                wanted, self._wanted = self._wanted, None
                if wanted is None:
                    # Decided under the lock: a refresh either sees this worker (and leaves
                    # its request here, taken on the next turn) or sees none and starts one.
                    self._worker = None
                    return
            self._show(wanted)

    def close(self) -> None:
        """Detach the controls from the parameters and close the widgets."""
        self.closed = True
        for control in self.controls.values():
            unlink = getattr(control, "_xsweep_unlink", None)
            if unlink is not None:
                unlink()
        self.box.close()
        for widget in (*self.controls.values(), self.image, self.text, self.status, self.area):
            widget.close()

    def _show(self, wanted: dict[str, Any]) -> None:
        start = time.perf_counter()
        try:
            value, source = self._value(wanted)
            kind, data = render(value)
        except Exception as exc:  # shown, not raised: a view must survive a bad cell
            kind, data, source = "html", f"<pre>{html.escape(repr(exc))}</pre>", "error"
        place(kind, data, self.image, self.text, self.area)
        cell = ", ".join(f"{k}={value_label(v)}" for k, v in wanted.items())
        took = time.perf_counter() - start
        self.message = f"{cell}: {source} ({took * 1000:.0f} ms)"
        self.status.value = f"<small>{html.escape(self.message)}</small>"
        self.source = source
        self.shown += 1

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the display shows the latest request (useful in scripts and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                worker = self._worker
                idle = self._wanted is None and worker is None
            if idle:
                return
            if worker is not None:
                worker.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise TimeoutError("the view did not finish within the timeout")

    def _value(self, wanted: dict[str, Any]) -> tuple[Any, str]:
        raise NotImplementedError


class SpaceExplorer(_View):
    """Controls for a function's parameters and the cell they select, via ``run_process``.

    Made by :meth:`ParameterSpace.explore`. Cached cells show at once, without calling the
    function; others are computed (and written back when the cache is on).

    Examples
    --------
    >>> import xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    >>> view = ps.explore(lambda a: a + 10, background=False)
    >>> view.source, view.text.value
    ('computed', '<pre>11</pre>')
    """

    def __init__(self, space: ParameterSpace, fn: Callable[..., Any], background: bool = True):
        dims = space.parameters_of(fn)
        super().__init__({d: space[d].widget() for d in dims}, background)
        self.space = space
        self.fn = fn
        self.source = ""
        self.refresh()

    def _value(self, wanted: dict[str, Any]) -> tuple[Any, str]:
        value, cached = self.space.cell(self.fn, **wanted)
        return value, "from the cache" if cached else "computed"


class DatasetExplorer(_View):
    """Sliders over the parameter dims of a Dataset and the selected cell of one variable.

    Made by :func:`xsweep.explore` and ``ds.xsweep.explore()``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xsweep.views.widgets import DatasetExplorer
    >>> ds = xr.Dataset({"v": ("a", np.array([1.5, 2.5]))}, coords={"a": [1, 2]})
    >>> DatasetExplorer(ds).variable.options
    ('v',)
    """

    def __init__(self, ds: xr.Dataset, var: str | None = None, background: bool = False):
        w = require_ipywidgets()
        names = [v for v in ds.data_vars if not is_bookkeeping(ds, v)]
        if not names:
            raise XsweepError("The Dataset has no output variables to explore.")
        if var is not None and var not in ds.data_vars:
            raise XsweepError(f"No variable {var!r} in the Dataset; it has {names}.")
        self.ds = ds
        self.variable = w.Dropdown(options=names, value=var or names[0], description="variable")
        self.params = _param_dims(ds)
        controls = {"variable": self.variable}
        for d in self.params:
            values = ds[d].values.tolist()
            controls[d] = w.SelectionSlider(
                options=[(value_label(v), v) for v in values], value=values[0], description=d
            )
        super().__init__(controls, background)
        self.source = ""
        self.refresh()

    def _value(self, wanted: dict[str, Any]) -> tuple[Any, str]:
        da = self.ds[wanted["variable"]]
        sel = {d: v for d, v in wanted.items() if d in da.dims}
        return da.sel(sel), "from the Dataset"


def _param_dims(ds: xr.Dataset) -> list[str]:
    """Dims of the status variables (xsweep files), else dims that have a coordinate."""
    dims: list[str] = []
    for name in ds.variables:  # coordinates of a swept Dataset, variables of a file
        if "flag_meanings" in ds[name].attrs and ds[name].dims:
            dims += [str(d) for d in ds[name].dims if d not in dims]
    if not dims:
        dims = [str(d) for d in ds.dims if d in ds.coords and ds[d].size > 1]
    return dims


def explore(ds: xr.Dataset, var: str | None = None) -> DatasetExplorer:
    """Browse a finished sweep (e.g. a shared results file) with sliders over its parameters.

    Needs no function and no xsweep space: only the Dataset, as ``xr.open_dataset`` gives it.

    Examples
    --------
    >>> import xarray as xr, numpy as np, xsweep as xs
    >>> ds = xr.Dataset({"v": (("a",), np.array([1.0, 2.0]))}, coords={"a": [10, 20]})
    >>> view = xs.explore(ds)
    >>> view.controls["a"].value = 20
    >>> view.text.value
    '<pre>2</pre>'
    """
    return DatasetExplorer(ds, var)
