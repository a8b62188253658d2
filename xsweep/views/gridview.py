"""A live map of a function's whole grid: each cell's status, or a scalar output, as it fills.

Made by :meth:`xsweep.ParameterSpace.grid_view`. Next to the one-cell explorer
(:mod:`xsweep.views.widgets`), it shows every cell at once over two chosen parameters (one small map
per value of a third), the other parameters held at their current values. A thread looks at
the space's results a few times a second (``ParameterSpace.watch``: statuses and one scalar
output, copied without a lock) and redraws the map when they changed, so it fills while a
sweep runs, in the background or not. Choosing a cell (sliders under the map) shows its
output, or its failure message.

Needs ipywidgets (``pip install 'xsweep-nc[notebook]'``) and pillow.
"""

from __future__ import annotations

import html
import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from ..errors import XsweepError
from .widgets import place, render, require_ipywidgets, value_label

if TYPE_CHECKING:  # pragma: no cover
    from ..space.parameter_space import ParameterSpace

#: RGB of each status code: not computed, computed, failed, computed without a value.
STATUS_COLORS = {0: (226, 226, 226), 1: (46, 160, 67), 2: (214, 48, 49), 3: (120, 150, 220)}
STATUS_NAMES = {0: "not computed", 1: "computed", 2: "failed", 3: "no value"}
#: The map's width in pixels (about: cells are whole pixels).
MAP_WIDTH = 480


class GridView:
    """A live map of ``fn``'s grid over ``x`` and ``y`` (panels for ``facet``); see module.

    Attributes
    ----------
    box : ipywidgets.VBox
        What the notebook shows (the view displays itself).
    map : ipywidgets.Image
        The map, a PNG redrawn when cells land.
    counts : dict
        How many cells of the map have each status (``"computed"``, ...), as last drawn.
    message : str
        The chosen cell and what it holds, as plain text.
    draws : int
        How many times the map was drawn (for tests and the curious).

    Examples
    --------
    >>> import xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3]),
    ...                         xs.Parameter("b", values=[10, 20])])
    >>> def add(a, b):
    ...     return a + b
    >>> view = ps.grid_view(add, interval=None)   # no polling thread: update() by hand
    >>> view.counts
    {'not computed': 6, 'computed': 0, 'failed': 0, 'no value': 0}
    >>> _ = ps.sweep(add, cells={"a": [1, 2]})
    >>> view.update()
    True
    >>> view.counts["computed"]
    4
    >>> view.pick["a"].value, view.pick["b"].value = 2, 20
    >>> view.message
    'a=2, b=20: computed: 22'
    >>> view.close()
    """

    def __init__(
        self,
        space: ParameterSpace,
        fn: Callable[..., Any],
        *,
        x: str | None = None,
        y: str | None = None,
        facet: str | None = None,
        show: str = "status",
        interval: float | None = 0.5,
    ) -> None:
        w = require_ipywidgets()
        self.space = space
        self.fn = fn
        self.watched = space.watch(fn)
        dims = list(self.watched.dims)
        self.x, self.y, self.facet = _choose_axes(dims, x, y, facet)
        if not isinstance(show, str):
            raise XsweepError(f"show must be 'status' or an output's name, not {show!r:.60}.")
        self.show = show
        if interval is not None and not (isinstance(interval, (int, float)) and interval > 0):
            raise XsweepError(
                f"interval must be a number of seconds > 0 or None, not {interval!r}."
            )
        self.interval = interval
        self._check_show(self.watched.now().outputs)  # before any widget
        shown = [d for d in (self.facet, self.y, self.x) if d is not None]
        self.held = [d for d in dims if d not in shown]
        self.map = w.Image(format="png", layout={"max_width": "100%"})
        self.legend = w.HTML()
        self.pick = {}
        for d in shown:
            values = space[d].values.tolist()
            self.pick[d] = w.SelectionSlider(
                options=[(value_label(v), v) for v in values],
                value=space[d].value,
                description=f"{d}",
                continuous_update=False,
            )
        self.controls = {d: space[d].widget() for d in self.held}
        self.cell_status = w.HTML()
        self.cell_image = w.Image(format="png", layout={"max_width": "100%"})
        self.cell_text = w.HTML()
        self.cell_area = w.Box([self.cell_text])
        self.box = w.VBox(
            [
                *self.controls.values(),
                self.map,
                self.legend,
                *self.pick.values(),
                self.cell_status,
                self.cell_area,
            ]
        )
        self.counts: dict[str, int] = {}
        self.message = ""
        self.draws = 0
        self.closed = False
        self._signature: bytes | None = None
        self._cell_signature: tuple | None = None
        self._lock = threading.RLock()
        for control in (*self.pick.values(), *self.controls.values()):
            control.observe(lambda change: self.update(force=True), names="value")
        self.update(force=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if interval is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    # -- looking --------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.update()
            except Exception:  # a view must outlive a bad moment (a space being edited)
                continue

    def update(self, force: bool = False) -> bool:
        """Redraw the map if cells changed since the last look (or ``force``); True if drawn."""
        if self.closed:
            return False
        with self._lock:
            grown = self._follow_values()
            output = None if self.show == "status" else self.show
            seen = self.watched.now(output)
            status, values, message_of = seen.status, seen.values, seen.message_of
            self._check_show(seen.outputs)
            held = {d: self.space[d].position for d in self.held}
            status, values = self._slice(status, held), self._slice(values, held)
            signature = status.tobytes() + (values.tobytes() if values is not None else b"")
            if force or grown or signature != self._signature:
                self._signature = signature
                self._draw(status, values)
                drawn = True
            else:
                drawn = False
            self._show_cell(status, message_of, held)
            return drawn

    def _follow_values(self) -> bool:
        """Give the sliders the values the parameters have now (``ps.refine`` adds some);
        True if any changed. The chosen cell stays chosen."""
        changed = False
        for d, slider in self.pick.items():
            values = self.space[d].values.tolist()
            if [v for _, v in slider.options] != values:
                chosen = slider.value
                slider.options = [(value_label(v), v) for v in values]
                if chosen in values and slider.value != chosen:
                    slider.value = chosen
                changed = True
        return changed

    def _check_show(self, outputs: tuple[str, ...]) -> None:
        # Outputs are known once a cell is stored; until then the map shows statuses.
        if self.show != "status" and outputs and self.show not in outputs:
            raise XsweepError(
                f"{self.watched.name} has no numeric scalar output {self.show!r} to map; "
                f"choose show='status' or one of {list(outputs)}."
            )

    @overload
    def _slice(self, array: np.ndarray, held: dict[str, int]) -> np.ndarray: ...
    @overload
    def _slice(self, array: np.ndarray | None, held: dict[str, int]) -> np.ndarray | None: ...
    def _slice(self, array: np.ndarray | None, held: dict[str, int]) -> np.ndarray | None:
        """``array`` over (facet, y, x): the held parameters at their current values."""
        if array is None:
            return None
        dims = list(self.watched.dims)
        index = tuple(held[d] if d in held else slice(None) for d in dims)
        rest = [d for d in dims if d not in held]
        order = [rest.index(d) for d in (self.facet, self.y, self.x) if d is not None]
        out = np.asarray(array[index]).transpose(order)
        while out.ndim < 3:
            out = out[np.newaxis]
        return out

    def _draw(self, status: np.ndarray, values: np.ndarray | None) -> None:
        nf, ny, nx = status.shape
        rgb = np.empty((nf, ny, nx, 3), dtype=np.uint8)
        for code, color in STATUS_COLORS.items():
            rgb[status == code] = color
        low = high = None
        if values is not None:
            computed = status == 1
            shown = values[computed]
            shown = shown[np.isfinite(shown)]
            if shown.size:
                import matplotlib

                low, high = float(shown.min()), float(shown.max())
                scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
                colors = matplotlib.colormaps["viridis"](np.nan_to_num(scaled))[..., :3]
                mask = computed & np.isfinite(values)
                rgb[mask] = (colors[mask] * 255).round().astype(np.uint8)
        sheet = _panels(rgb, self._picked(), self._titles(nf))
        self.map.width = str(sheet.shape[1])  # its own size: browsers would stretch it
        self.map.value = _png(sheet)
        total = {name: int(np.count_nonzero(status == code)) for code, name in STATUS_NAMES.items()}
        self.counts = total
        self.legend.value = self._legend(total, low, high)
        self.draws += 1

    def _picked(self) -> tuple[int, int, int]:
        def index(d: str | None) -> int:
            return 0 if d is None else self.space[d].index(self.pick[d].value)

        return index(self.facet), index(self.y), index(self.x)

    def _titles(self, nf: int) -> list[str]:
        if self.facet is None:
            return [""]
        return [f"{self.facet}={value_label(v)}" for v in self.space[self.facet].values.tolist()]

    def _legend(self, counts: dict[str, int], low: float | None, high: float | None) -> str:
        def swatch(color: tuple[int, int, int]) -> str:
            return (
                f'<span style="display:inline-block;width:0.9em;height:0.9em;'
                f'background:rgb{color};margin:0 0.3em 0 0.8em"></span>'
            )

        parts = [
            f"{swatch(STATUS_COLORS[code])}{name} {counts[name]}"
            for code, name in STATUS_NAMES.items()
        ]

        def span(d: str) -> str:
            values = self.space[d].values.tolist()
            ends = (
                value_label(values[0])
                if len(values) == 1
                else f"{value_label(values[0])} … {value_label(values[-1])}"
            )
            return html.escape(f"{d} ({ends})")

        axes = f"columns: {span(self.x)}"
        if self.y is not None:
            axes += f", rows: {span(self.y)}"
        if self.facet is not None:
            axes += f", panels: {span(self.facet)}"
        if self.show != "status":
            scale = f" from {low:.4g} to {high:.4g}" if low is not None else ""
            axes += f"; colour: {html.escape(self.show)}{scale} (viridis)"
        return f"<small>{axes}<br>{' '.join(parts)}</small>"

    def _show_cell(
        self, status: np.ndarray, message_of: Callable[[dict[str, int]], str], held: dict[str, int]
    ) -> None:
        f, yi, xi = self._picked()
        code = int(status[f, yi, xi])
        values = {d: self.pick[d].value for d in self.pick}
        values.update({d: self.space[d].value for d in self.held})
        signature = (tuple(sorted(values.items())), code)
        if signature == self._cell_signature:
            return
        self._cell_signature = signature
        where = ", ".join(f"{d}={value_label(values[d])}" for d in self.watched.dims)
        if code == 1 or code == 3:
            value: Any = None
            try:
                value, _ = self.space.cell(self.fn, **values)  # cached: never computes here
                kind, data = render(value)
            except Exception as exc:  # shown, not raised: a view must survive a bad cell
                kind, data = "html", f"<pre>{html.escape(repr(exc))}</pre>"
            place(kind, data, self.cell_image, self.cell_text, self.cell_area)
            text = _plain(value)
            self.message = f"{where}: {STATUS_NAMES[code]}" + (f": {text}" if text else "")
        elif code == 2:
            indices = {d: self.space[d].index(values[d]) for d in self.watched.dims}
            error = message_of(indices)
            self.cell_text.value = f"<pre>{html.escape(error)}</pre>"
            self.cell_area.children = [self.cell_text]
            self.message = f"{where}: failed: {error}"
        else:
            self.cell_text.value = ""
            self.cell_area.children = [self.cell_text]
            self.message = f"{where}: not computed yet"
        self.cell_status.value = f"<small>{html.escape(self.message)}</small>"

    def close(self) -> None:
        """Stop looking and close the widgets (controls stop following the parameters)."""
        if self.closed:
            return
        self.closed = True
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
        for control in self.controls.values():
            unlink = getattr(control, "_xsweep_unlink", None)
            if unlink is not None:
                unlink()
        self.box.close()


def _choose_axes(
    dims: list[str], x: str | None, y: str | None, facet: str | None
) -> tuple[str, str | None, str | None]:
    """The map's axes: the last parameter across, the one before down, the one before that
    in panels, unless chosen; errors list the valid choices."""
    for name, value in (("x", x), ("y", y), ("facet", facet)):
        if value is not None and value not in dims:
            raise XsweepError(
                f"{name}={value!r:.60} is not a parameter of the function; choose one of {dims}."
            )
    chosen = [v for v in (x, y, facet) if v is not None]
    if len(set(chosen)) != len(chosen):
        raise XsweepError(f"x, y and facet must be different parameters; got {chosen}.")
    free = [d for d in dims if d not in chosen]
    if x is None:
        x = free.pop() if free else None
    if x is None:
        raise XsweepError("The function takes no parameter: there is no grid to map.")
    if y is None and free:
        y = free.pop()
    if facet is None and free:
        facet = free.pop()
    return x, y, facet


def _panels(rgb: np.ndarray, picked: tuple[int, int, int], titles: list[str]) -> np.ndarray:
    """One picture of the maps side by side (wrapped in rows of 4), cells as square blocks,
    the picked cell framed in black, each panel under its title."""
    from PIL import Image, ImageDraw

    nf, ny, nx, _ = rgb.shape
    per_row = min(nf, 4)
    px = int(max(3, min(40, (MAP_WIDTH // per_row - 8) // max(nx, 1), 320 // max(ny, 1))))
    title_h = 14 if any(titles) else 0
    pw, ph = nx * px, ny * px
    rows = -(-nf // per_row)
    sheet = Image.new("RGB", (per_row * (pw + 8) + 8, rows * (ph + title_h + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for f in range(nf):
        r, c = divmod(f, per_row)
        left, top = 8 + c * (pw + 8), 8 + r * (ph + title_h + 8)
        if titles[f]:
            draw.text((left, top), titles[f], fill=(0, 0, 0))
        block = np.repeat(np.repeat(rgb[f], px, axis=0), px, axis=1)
        if px >= 6:  # a hairline between cells
            block[px - 1 :: px, :] = 255
            block[:, px - 1 :: px] = 255
        sheet.paste(Image.fromarray(block), (left, top + title_h))
        if f == picked[0]:
            x0, y0 = left + picked[2] * px, top + title_h + picked[1] * px
            draw.rectangle([x0, y0, x0 + px - 1, y0 + px - 1], outline=(0, 0, 0), width=2)
    return np.asarray(sheet)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _plain(value: Any) -> str:
    """A short text of a cell's value for ``GridView.message``."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, np.ndarray) and value.ndim:
        return f"array {value.shape} {value.dtype}"
    if isinstance(value, np.ndarray):
        value = value.item()
    if value is None:
        return "None"
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    if isinstance(value, (int, np.integer, str, bool, np.bool_)):
        return str(value)
    return type(value).__name__
