"""Ragged outputs: growing a structure to hold arrays whose shape varies between cells."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from ..errors import OutputError
from ..file_format import EXTENT_ATTR
from .base import fits_within
from .infer import check_dim_lengths, infer_spec
from .spec import OutputSpec, VariableSpec


def grow_spec(
    spec: OutputSpec,
    result: Any,
    default_name: str,
    output_dims: dict[str, tuple[str, ...]] | None = None,
) -> OutputSpec | None:
    """The structure that holds both ``spec``'s cells and ``result``, if arrays just grew.

    Arrays whose shape varies between cells (a time series that stops early) are stored
    padded to the union of their shapes, with the fill, and a per-cell extent variable
    ``<name>_extent`` holds each cell's own shape, so the exact array comes back. Returns
    None when ``result`` differs in any other way (kind, names, dtype, number of dims): a
    real change of structure.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import grow_spec, infer_spec
    >>> spec = infer_spec(np.zeros(3), "trace")
    >>> grown = grow_spec(spec, np.zeros(5), "trace")
    >>> [(v.name, v.shape) for v in grown.variables]
    [('trace', (5,)), ('trace_extent', (1,))]
    >>> grow_spec(spec, np.zeros((5, 2)), "trace") is None
    True
    """
    if spec.kind not in ("array", "dict", "dataarray", "dataset") or spec._pandas is not None:
        return None
    try:
        new = infer_spec(result, default_name, output_dims)
    except OutputError:
        return None
    grown = union_spec(spec, new)
    return None if grown is None or grown is spec else grown


def union_spec(spec: OutputSpec, other: OutputSpec) -> OutputSpec | None:
    """The structure that holds the cells of both ``spec`` and ``other``, if only the
    shapes of their arrays differ (ragged outputs, padded to the larger extent).

    Returns ``spec`` itself when it holds ``other``'s cells as it is, and None when padding
    cannot hold them (another kind, other names, or an array of another dtype or number of
    dims): a real change of structure. The dtypes of arrays of one shape are not compared
    here. Used to grow a sweep's structure cell by cell (:func:`grow_spec`) and to
    merge results files whose parts were padded to different extents.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import infer_spec, union_spec
    >>> short, long = infer_spec(np.zeros(2), "trace"), infer_spec(np.zeros(4), "trace")
    >>> [(v.name, v.shape) for v in union_spec(short, long).variables]
    [('trace', (4,)), ('trace_extent', (1,))]
    >>> union_spec(long, long) is long
    True
    """
    if spec.kind not in ("array", "dict", "dataarray", "dataset") or spec._pandas is not None:
        return spec if _same_variables(spec, other) else None
    if other.kind != spec.kind or other._pandas is not None:
        return None
    old = [v for i, v in enumerate(spec.variables) if i not in set(spec._extents.values())]
    new = [v for i, v in enumerate(other.variables) if i not in set(other._extents.values())]
    if [v.name for v in new] != [v.name for v in old]:
        return None
    variables: list[VariableSpec] = []
    grew = False
    for was, now in zip(old, new):
        if fits_within(now.shape, was.shape) and (
            was.shape == now.shape and now.extent is None or was.extent is not None
        ):
            variables.append(was)
            if was.extent is not None:
                variables.append(spec.variables[spec.names.index(was.extent)])
            continue
        plain = was._codec is None and now._codec is None and not was.scalar
        same_kind = was.dtype == now.dtype or (
            now.dtype.kind in "biuf" and np.can_cast(now.dtype, was.dtype, "safe")
        )
        same_dims = was.named_dims == now.named_dims
        if not plain or not same_kind or len(was.shape) != len(now.shape) or not same_dims:
            return None
        shape = tuple(max(a, b) for a, b in zip(was.shape, now.shape))
        extent = was.extent or now.extent or f"{was.name}_extent"
        attrs = {**was.attrs, EXTENT_ATTR: extent}
        coords = _grown_coords(was, now, shape)
        variables.append(
            VariableSpec(was.name, was.dtype, shape, was.dims, coords=coords, attrs=attrs)
        )
        variables.append(
            VariableSpec(
                extent,
                np.dtype(np.int32),
                (len(shape),),
                (f"{was.name}_axis",),
                attrs={
                    "long_name": f"shape of each cell's {was.name} before padding",
                    "description": f"{was.name} is padded with its fill to {list(shape)}; "
                    f"a cell's own values are {was.name}[:n0, :n1, ...] with these n",
                },
            )
        )
        grew = True
    if not grew:
        return spec
    grown = OutputSpec(spec.kind, tuple(variables))
    try:
        check_dim_lengths(grown)
    except OutputError:  # a dim shared with an output that did not grow with it
        return None
    return grown


def _same_variables(spec: OutputSpec, other: OutputSpec) -> bool:
    mine = [(v.name, v.dtype, v.shape) for v in spec.variables]
    return other.kind == spec.kind and mine == [(v.name, v.dtype, v.shape) for v in other.variables]


def _grown_coords(
    was: VariableSpec, now: VariableSpec, shape: tuple[int, ...]
) -> dict[str, xr.Variable]:
    """The coordinates of a DataArray output padded to ``shape``.

    A coordinate along a ragged dim is taken from the cell that spans all of it (the
    longest), so a shorter cell's coordinate is its start (``t = 0, 1, 2`` of ``0 .. 4``),
    which is what a time axis or an index is; one that no cell spans whole is dropped.
    """
    sizes: dict[Hashable, int] = dict(zip(was.dims, shape))
    coords = {}
    for name in {**was.coords, **now.coords}:
        for source in (now.coords.get(name), was.coords.get(name)):
            if source is not None and all(sizes.get(d) == n for d, n in source.sizes.items()):
                coords[name] = source
                break
    return coords
