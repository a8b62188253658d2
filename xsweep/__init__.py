"""xsweep: parameter sweeps whose results live in xarray and NetCDF.

Declare :class:`Parameter` objects, gather them in a :class:`ParameterSpace`, and sweep a
function over every combination: ``ds = ps.sweep(fn)`` gives an ``xarray.Dataset``;
``ps.enable_cache("results.nc")`` keeps it in a crash-safe NetCDF file that resumes where an
interrupted sweep stopped.
"""

import typing as _typing

from ._version import __version__
from .errors import (
    CommandError,
    DamagedSideFileWarning,
    FunctionChangedError,
    OutputError,
    ParameterError,
    PartsIncompleteError,
    PartsIncompleteWarning,
    ResultsTooLargeError,
    SkipCell,
    StoreError,
    StoreLockedError,
    StoreMismatchError,
    StoreReadOnlyError,
    SweepError,
    SweepFailuresWarning,
    XsweepError,
)
from .functions.fingerprint import version
from .outputs.images import ImageArray
from .parameters.parameter import Parameter
from .programs import readers  # noqa: F401  (xsweep.readers.read_text: readers for xs.command)
from .programs.command import command
from .programs.tree import open_tree
from .space.parameter_space import ParameterSpace
from .store import check_parts, merge_stores
from .store.export import export_zarr
from .store.nclock import open_dataset
from .store.virtual import open_virtual
from .views import accessor as _accessor  # noqa: F401  (registers ds.xsweep)
from .views.plotting import figure_to_array, montage

if _typing.TYPE_CHECKING:  # annotations only: no names added to the package
    import xarray as xr

    from .views.widgets import DatasetExplorer


def explore(ds: "xr.Dataset", var: "str | None" = None) -> "DatasetExplorer":
    """Browse a Dataset (e.g. a shared results file) with sliders: see :mod:`xsweep.views.widgets`.

    Examples
    --------
    >>> import numpy as np, xarray as xr, xsweep as xs
    >>> ds = xr.Dataset({"v": ("a", np.array([1.5, 2.5]))}, coords={"a": [1, 2]})
    >>> view = xs.explore(ds)
    >>> view.controls["a"].value = 2
    >>> view.text.value
    '<pre>2.5</pre>'
    """
    from .views.widgets import explore as _explore

    return _explore(ds, var)


__all__ = [
    "CommandError",
    "DamagedSideFileWarning",
    "FunctionChangedError",
    "ImageArray",
    "ResultsTooLargeError",
    "SkipCell",
    "OutputError",
    "Parameter",
    "ParameterError",
    "ParameterSpace",
    "PartsIncompleteError",
    "PartsIncompleteWarning",
    "StoreError",
    "StoreLockedError",
    "StoreMismatchError",
    "StoreReadOnlyError",
    "SweepError",
    "SweepFailuresWarning",
    "XsweepError",
    "__version__",
    "check_parts",
    "command",
    "explore",
    "export_zarr",
    "figure_to_array",
    "merge_stores",
    "montage",
    "open_dataset",
    "open_tree",
    "open_virtual",
    "version",
]
