"""The number per cell that drives refinement, read from each round's Dataset.

It is one output of the swept function: a numeric scalar output as it is, or any output
through the user's ``reduce`` (``reduce=lambda image: image.mean()``), called once per cell
with the cell's value as a numpy array and remembered across rounds, so that each round
reduces only its new cells (and memory holds a number per cell, never the outputs). A
cell without a value (not computed, failed, ``None``) is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ..errors import SweepError
from ..file_format import COMPUTED


class Observed:
    """Reads the driving number of every cell from a round's Dataset (see the module).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xsweep.refining.observed import Observed
    >>> ds = xr.Dataset({"f": ("x", [1.0, 5.0, 7.0])},
    ...                 coords={"x": [0.0, 0.5, 1.0], "f_status": ("x", [1, 2, 1])})
    >>> Observed(None, None, "f").read(ds)
    array([ 1., nan,  7.])
    """

    def __init__(self, output: str | None, reduce: Callable[[Any], Any] | None, name: str):
        self.output = output
        self.reduce = reduce
        self.name = name
        self.status_name = f"{name}_status"
        self._reduced: dict[tuple, float] = {}

    def dims(self, ds: xr.Dataset) -> tuple[str, ...]:
        """The swept parameters of the Dataset, in order (the status variable's dims)."""
        return tuple(str(d) for d in ds[self.status_name].dims)

    def read(self, ds: xr.Dataset) -> np.ndarray:
        """One float per cell over :meth:`dims`: the output (or its reduction); NaN where
        a cell has no value."""
        output = self._choose(ds)
        status = np.asarray(ds[self.status_name].values)
        var = ds[output]
        own = var.dims[status.ndim :]
        if self.reduce is None:
            if own:
                raise SweepError(
                    f"The output {output!r} of {self.name} has dims {list(own)} besides the "
                    "parameters: refinement needs one number per cell. Give a reduction, e.g. "
                    "ps.refine(fn, reduce=lambda value: value.mean()), or choose a scalar "
                    "output with output=..."
                )
            if var.dtype.kind not in "biuf":
                raise SweepError(
                    f"The output {output!r} of {self.name} holds {var.dtype} values; refinement "
                    "needs numbers. Choose a numeric output with output=..., or give reduce= "
                    "to turn each cell's value into a number."
                )
            values = np.asarray(var.values, dtype=np.float64)
            return np.where(status == COMPUTED, values, np.nan)
        return self._reduced_values(ds, var, status, self.reduce)

    def _choose(self, ds: xr.Dataset) -> str:
        outputs = [str(v) for v in ds.data_vars]
        if self.output is not None:
            if self.output not in outputs:
                raise SweepError(
                    f"{self.name} has no output {self.output!r}; its outputs are {outputs}. "
                    "Choose one with output=..."
                )
            return self.output
        if len(outputs) == 1:
            return outputs[0]
        raise SweepError(
            f"{self.name} returns several outputs, {outputs}: say which one drives "
            f"refinement with output=..., e.g. output={outputs[0]!r}."
            if outputs
            else f"{self.name} has no output to refine by (every cell returned None or failed)."
        )

    def _reduced_values(
        self,
        ds: xr.Dataset,
        var: xr.DataArray,
        status: np.ndarray,
        reduce: Callable[[Any], Any],
    ) -> np.ndarray:
        """``reduce`` of each computed cell, each cell reduced once across rounds."""
        dims = self.dims(ds)
        coords = [ds[d].values.tolist() for d in dims]
        out = np.full(status.shape, np.nan)
        data = var.variable
        for cell in zip(*np.nonzero(status == COMPUTED)):
            key = tuple(c[i] for c, i in zip(coords, cell))
            value = self._reduced.get(key)
            if value is None:
                value = self._reduce_cell(reduce, np.asarray(data[tuple(cell)].values), dims, key)
                self._reduced[key] = value
            out[cell] = value
        return out

    def _reduce_cell(
        self,
        reduce: Callable[[Any], Any],
        value: np.ndarray,
        dims: tuple[str, ...],
        key: tuple,
    ) -> float:
        where = ", ".join(f"{d}={v!r}" for d, v in zip(dims, key))
        try:
            reduced = reduce(value)
            number = float(reduced)
        except Exception as exc:
            raise SweepError(
                f"reduce failed on the cell {where} of {self.name} ({type(exc).__name__}: "
                f"{str(exc)[:200]}); it gets the cell's value as a numpy array of shape "
                f"{value.shape} and must return a number."
            ) from exc
        return number if not math.isinf(number) else np.nan
