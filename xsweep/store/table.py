"""One function's results in memory: flat numpy buffers over its parameter dims."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ..file_format import (
    COMPUTED,
    DIMS_ATTR,
    DTYPE_ATTR,
    FAILED,
    FINGERPRINT_ATTR,
    FLAG_MEANINGS,
    FLAG_VALUES,
    FUNCTION_ATTR,
    KEPT_FINGERPRINTS_ATTR,
    KIND_ATTR,
    MESSAGES_ATTR,
    NAME_ATTR,
    NO_VALUE,
    NOT_COMPUTED,
    OUTPUTS_ATTR,
    VariableNames,
    variable_names,
)
from ..outputs import OutputSpec
from .buffers import CellBuffer, InMemory, filled
from .grid import Grid
from .holes import table_mask
from .ondisk import OnDisk, streams
from .parts import PartRecord


# ---------------------------------------------------------------------------------------------
# One function's results in memory
# ---------------------------------------------------------------------------------------------
class FunctionTable:
    """The results of one function over its parameter dims, in flat buffers.

    ``status``, ``seconds`` and each output buffer are indexed by the flat (C-order) cell
    index over ``dims``. ``status`` and ``seconds`` are numpy arrays; each output's buffer is
    a :class:`~xsweep.store.buffers.CellBuffer` (in memory, or kept on disk), of shape
    ``(ncells, *cell_shape)``.
    """

    def __init__(self, key: str, name: str, dims: tuple[str, ...], shape: tuple[int, ...]):
        self.key = key
        self.name = name
        self.dims = dims
        self.shape = shape
        self.size = int(np.prod(shape, dtype=np.int64))
        self.status = np.zeros(self.size, dtype=np.int8)
        self.seconds = np.full(self.size, np.nan, dtype=np.float32)
        self.errors: dict[int, str] = {}
        self.spec: OutputSpec | None = None
        self.buffers: tuple[CellBuffer, ...] = ()
        self.fingerprint: str | None = None
        self.history: list[str] = []  # earlier fingerprints whose cells were kept
        #: The part(s) of a ``sweep(part=(k, n))`` this table was asked to compute, or None.
        self.part: PartRecord | None = None
        self._view: xr.Dataset | None = None
        #: The output buffers belong to a Dataset handed to the caller (see ``lend``).
        self.lent = False

    @property
    def buffers(self) -> tuple[CellBuffer, ...]:
        """The outputs' buffers, in the order of ``spec.variables``."""
        return self._buffers

    @buffers.setter
    def buffers(self, buffers: tuple[CellBuffer, ...]) -> None:
        self._buffers = buffers
        # What put writes into, bound once per change of buffers (see CellBuffer.sink).
        self._sinks = tuple(buf.sink() for buf in buffers)

    @property
    def names(self) -> VariableNames:
        """The names of the bookkeeping variables in the Dataset and the file (see file_format)."""
        return variable_names(self.name)

    @property
    def own_names(self) -> tuple[str, ...]:
        """Every variable name this function owns in a Dataset."""
        outs = self.spec.names if self.spec else ()
        return (*outs, self.names.status, self.names.seconds, self.names.error, self.names.messages)

    def set_spec(self, spec: OutputSpec, stream: bool = False) -> None:
        """Fix the output structure; ``stream``: array outputs stay on disk (``OnDisk``)."""
        self.close()
        self.spec = spec
        self.buffers = tuple(
            OnDisk(v, self.size) if stream and streams(v) else InMemory.filled(v, self.size)
            for v in spec.variables
        )
        self._view = None

    @property
    def streamed(self) -> bool:
        """Whether some outputs are kept on disk rather than in memory."""
        return any(buf.on_disk for buf in self.buffers)

    def memory_bytes(self) -> int:
        """Bytes of results this table holds in memory."""
        return sum(buf.memory_bytes for buf in self.buffers)

    def close(self) -> None:
        """Let go of the files the on-disk outputs read from."""
        for buf in self.buffers:
            buf.close()

    def regrow(self, spec: OutputSpec) -> None:
        """Take a structure whose ragged outputs grew (see :func:`xsweep.outputs.grow_spec`).

        Every cell keeps its values, padded with the fill; an output that just became
        ragged gets its extent variable, which says the cells computed so far have the old
        shape.
        """
        assert self.spec is not None  # only a table with outputs grows
        old = {v.name: (v, buf) for v, buf in zip(self.spec.variables, self.buffers)}
        done = self.status == COMPUTED  # cells without a value keep the fill
        buffers = []
        for var in spec.variables:
            if var.name in old:
                buffers.append(old[var.name][1].regrown(var))
                continue
            # The extent of an output that just became ragged: the old shape
            extent = filled((self.size, *var.shape), var)
            source = next(v for v in spec.variables if v.extent == var.name)
            extent[done] = old[source.name][0].shape
            buffers.append(InMemory(var, extent))
        self.spec = spec
        self.buffers = tuple(buffers)
        self._view = None

    def put(self, index: int, values: tuple[Any, ...], seconds: float) -> None:
        for sink, value in zip(self._sinks, values):
            sink[index] = value
        self.status[index] = COMPUTED
        self.seconds[index] = seconds
        if self.errors:
            self.errors.pop(index, None)

    def putter(self) -> Callable[[int, tuple[Any, ...], float], None]:
        """:meth:`put` for the per-cell hot path: bound to today's buffers (rebind after a
        structure change, as recorders do), a third faster for one output."""
        if len(self.buffers) != 1:
            return self.put
        sink, status, times, errors = self._sinks[0], self.status, self.seconds, self.errors

        def put(index: int, values: tuple[Any, ...], seconds: float) -> None:
            sink[index] = values[0]
            status[index] = COMPUTED
            times[index] = seconds
            if errors:
                errors.pop(index, None)

        return put

    def put_none(self, index: int, seconds: float) -> None:
        """The function returned None: computed, no value (outputs hold their fill)."""
        if self.spec is not None:
            for var, sink in zip(self.spec.variables, self._sinks):
                sink[index] = var.fill
        self.status[index] = NO_VALUE
        self.seconds[index] = seconds
        if self.errors:
            self.errors.pop(index, None)

    def put_failure(self, index: int, message: str, seconds: float) -> None:
        if self.spec is not None:
            for var, sink in zip(self.spec.variables, self._sinks):
                sink[index] = var.fill
        self.status[index] = FAILED
        self.seconds[index] = seconds
        self.errors[index] = message

    def clear(self) -> None:
        self.status[:] = NOT_COMPUTED
        self.seconds[:] = np.nan
        self.errors.clear()
        for buf in self.buffers:
            buf.clear()

    def regrid(
        self,
        dims: tuple[str, ...],
        shape: tuple[int, ...],
        positions: dict[str, np.ndarray],
        fixed: dict[str, int],
    ) -> None:
        """Move every cell to a new grid: other values, other dim order, or added dims.

        ``positions[d][i]`` is the new index of old index ``i`` along ``d`` (identity when
        absent); ``fixed[d]`` is the index along an added dim ``d`` at which the existing
        cells were computed. New cells are not computed.
        """
        order = [self.dims.index(d) for d in dims if d in self.dims]
        # Added dims are fixed at one index (basic indexing: a view); the others get their
        # old cells placed at new positions with outer (np.ix_) indexing.
        head = tuple(fixed[d] if d in fixed else slice(None) for d in dims)
        outer = np.ix_(
            *[positions.get(d, np.arange(n)) for d, n in zip(dims, shape) if d not in fixed]
        )
        size = int(np.prod(shape, dtype=np.int64))
        ndim = len(self.shape)

        def move(flat: np.ndarray, fill: Any, cell_shape: tuple[int, ...] = ()) -> np.ndarray:
            old = flat.reshape(self.shape + cell_shape)
            old = old.transpose(*order, *range(ndim, ndim + len(cell_shape)))
            new = (
                np.zeros(shape + cell_shape, dtype=flat.dtype)
                if isinstance(fill, int) and fill == 0
                else np.full(shape + cell_shape, fill, dtype=flat.dtype)
            )
            new[head][outer] = old
            return new.reshape((size, *cell_shape))

        codes_old = dict(self.errors)
        if self.part is not None:
            # Other dims (added, reordered) deal the cells in another order: the record no
            # longer says which cells its parts hold, and the next part sweep writes anew.
            same = dims == self.dims and not fixed
            self.part = self.part.moved(self._axes(positions)) if same else None
        self.status = move(self.status, NOT_COMPUTED)
        self.seconds = move(self.seconds, np.nan)
        self.buffers = tuple(buf.moved(move, size) for buf in self.buffers)
        if codes_old:
            flat_old = np.fromiter(codes_old, dtype=np.int64)
            marker = np.full(self.size, -1, dtype=np.int64)
            marker[flat_old] = np.arange(flat_old.size)
            moved = move(marker, -1)
            messages = list(codes_old.values())
            self.errors = {int(i): messages[m] for i, m in enumerate(moved) if m >= 0}
        self.dims, self.shape, self.size = dims, shape, size
        self._view = None

    def take(self, dim: str, keep: np.ndarray) -> None:
        """Keep only the cells at indices ``keep`` along ``dim`` (in that order)."""
        axis = self.dims.index(dim)
        shape: list[int] | tuple[int, ...]
        shape = list(self.shape)
        shape[axis] = len(keep)
        shape = tuple(shape)
        size = int(np.prod(shape, dtype=np.int64))

        def cut(flat: np.ndarray, fill: Any = None, cell_shape: tuple[int, ...] = ()) -> np.ndarray:
            grid = flat.reshape(self.shape + cell_shape)
            return np.ascontiguousarray(np.take(grid, keep, axis=axis)).reshape((size, *cell_shape))

        if self.part is not None:
            self.part = self.part.kept(axis, keep, self.shape[axis])
        marker = np.full(self.size, -1, dtype=np.int64)
        old_errors = list(self.errors.items())
        for n, (index, _) in enumerate(old_errors):
            marker[index] = n
        self.status = cut(self.status)
        self.seconds = cut(self.seconds)
        self.buffers = tuple(buf.moved(cut, size) for buf in self.buffers)
        moved = cut(marker)
        self.errors = {int(i): old_errors[m][1] for i, m in enumerate(moved) if m >= 0}
        self.shape, self.size = shape, size
        self._view = None

    def _axes(self, positions: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
        return {self.dims.index(d): p for d, p in positions.items() if d in self.dims}

    def error_codes(self) -> tuple[np.ndarray, list[str]]:
        """Per-cell error codes (0: none, k: ``messages[k-1]``) and the distinct messages."""
        codes = np.zeros(self.size, dtype=np.int32)
        messages: list[str] = []
        number: dict[str, int] = {}
        for index, msg in self.errors.items():
            if msg not in number:
                messages.append(msg)
                number[msg] = len(messages)
            codes[index] = number[msg]
        return codes, messages

    # -- xarray views -------------------------------------------------------------------------
    def output_view(self, grid: Grid) -> xr.Dataset:
        """A Dataset of the outputs sharing memory with the buffers (for ``.sel`` reads)."""
        if self._view is None:
            self._view = xr.Dataset(self._output_vars(copy=False, mask=False), self._coords(grid))
        return self._view

    def lend(self, grid: Grid) -> xr.Dataset:
        """A Dataset that takes over the output buffers, for a caller to own.

        The table must get buffers of its own (``NetCDFStore`` reads them back from its
        file) before it uses them again: the caller may change the Dataset in place.
        """
        ds = self.to_dataset(grid, copy=False)
        self.lent = True
        self._view = None
        return ds

    def to_dataset(self, grid: Grid, copy: bool = True) -> xr.Dataset:
        """A Dataset of everything this function holds (detached from the buffers if ``copy``).

        Its data variables are the outputs. What each cell is rides along as coordinates
        over the parameter dims (they follow ``.sel()``; ``ds.xsweep.status`` reads them):
        ``<name>_status`` and, when cells failed, ``<name>_error``, whose attribute
        ``xsweep_messages`` lists the distinct messages. Timings are not in it (they would
        make the results of two runs differ); the file keeps everything as variables (see
        docs/file_format.md).
        """
        coords = self._coords(grid)
        coords.update(self._bookkeeping_coords())
        return xr.Dataset(self._output_vars(copy=copy), coords)

    def _coords(self, grid: Grid) -> dict[str, xr.Variable]:
        out = grid.variables(self.dims)
        if self.spec is not None:
            for var in self.spec.variables:
                out.update(var.coords)
        return out

    def _output_vars(self, copy: bool, mask: bool = True) -> dict[str, xr.Variable]:
        """The outputs as Variables; with ``mask``, int ones with holes as float with NaN."""
        out: dict[str, xr.Variable] = {}
        if self.spec is None:
            return out
        for var, buf in zip(self.spec.variables, self.buffers):
            # Cells without a value never read as a number: see store/holes.py
            holes = table_mask(self, var) if mask else None
            data = buf.grid_data(self.shape, holes, copy)  # on disk: read when indexed
            attrs = dict(var.attrs)
            if holes is not None:
                attrs[DTYPE_ATTR] = var.dtype.name
            out[var.name] = xr.Variable(self.dims + var.dims, data, attrs)
        return out

    def _bookkeeping_coords(self) -> dict[str, xr.Variable]:
        out = {
            self.names.status: xr.Variable(
                self.dims, self.status.reshape(self.shape).copy(), self.status_attrs()
            ),
        }
        codes, messages = self.error_codes()
        if messages:
            attrs = {
                "long_name": f"error raised by each failed cell of {self.key}",
                "description": "0 where the cell did not fail; k > 0 means message k of the "
                f"attribute {MESSAGES_ATTR} (1-based)",
                MESSAGES_ATTR: messages,
            }
            out[self.names.error] = xr.Variable(self.dims, codes.reshape(self.shape), attrs)
        return out

    def status_attrs(self, file: bool = False) -> dict[str, Any]:
        """The attributes of ``<name>_status``; in the ``file``, the part record too."""
        attrs: dict[str, Any] = {
            "long_name": f"computation status of {self.key}",
            "flag_values": FLAG_VALUES,
            "flag_meanings": FLAG_MEANINGS,
            FUNCTION_ATTR: self.key,
            NAME_ATTR: self.name,
        }
        if self.spec is not None:
            attrs[KIND_ATTR] = self.spec.kind
            attrs[OUTPUTS_ATTR] = json.dumps(list(self.spec.names))
        if self.fingerprint is not None:
            attrs[FINGERPRINT_ATTR] = self.fingerprint
        if self.history:
            attrs[KEPT_FINGERPRINTS_ATTR] = json.dumps(self.history)
            attrs["comment"] = (
                "Some cells were computed by earlier versions of the function's code, kept on "
                f"purpose (on_change='keep'); their fingerprints are in {KEPT_FINGERPRINTS_ATTR}."
            )
        if file and self.part is not None:
            attrs.update(self.part.attrs(self.dims, self.shape))
        return attrs

    def seconds_attrs(self) -> dict[str, Any]:
        return {"long_name": f"time taken to compute each cell of {self.key}", "units": "s"}

    def error_attrs(self) -> dict[str, Any]:
        return {
            "long_name": f"error raised by each failed cell of {self.key}",
            "description": f"0 where the cell did not fail; k > 0 means message k of "
            f"{self.names.messages} (1-based)",
        }


def same_structure(a: OutputSpec, b: OutputSpec) -> bool:
    """Whether ``a`` and ``b`` are of one kind, with the same variables, dtypes and shapes."""

    def shape(spec: OutputSpec) -> list:
        return [(v.name, v.dtype, v.shape, v.named_dims, v.scalar) for v in spec.variables]

    return a.kind == b.kind and shape(a) == shape(b)


def own_dim_names(ds: xr.Dataset, table: FunctionTable) -> xr.Dataset:
    """``table``'s results with each output dim under its own name where nothing else in
    ``ds`` has it (the file may have given it the function's name; see ``_check_spec``).

    A sweep over a parameter ``x`` of a function returning an image keeps ``<fn>_x`` for
    the image's dim: two dims of one Dataset never share a name.
    """
    spec = table.spec
    if spec is None or all(v.named_dims == v.dims for v in spec.variables):
        return ds
    rename: dict[str, str] = {}
    for var in spec.variables:
        for stored, own in zip(var.dims, var.named_dims):
            if stored != own and stored in ds.dims and own not in ds.variables:
                if own not in ds.dims and own not in rename.values():
                    rename[stored] = own
    if not rename:
        return ds
    ds = ds.rename(rename)
    for var in spec.variables:
        if var.name in ds and all(rename.get(s, s) == n for s, n in zip(var.dims, var.named_dims)):
            ds[var.name].attrs.pop(DIMS_ATTR, None)
    return ds
