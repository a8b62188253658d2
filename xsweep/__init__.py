"""xsweep: parameter sweeps whose results live in xarray and NetCDF.

Declare :class:`Parameter` objects, gather them in a :class:`ParameterSpace`, and sweep a
function over every combination: ``ds = ps.sweep(fn)`` gives an ``xarray.Dataset``;
``ps.enable_cache("results.nc")`` keeps it in a crash-safe NetCDF file that resumes where an
interrupted sweep stopped.
"""

from ._version import __version__
from .errors import (
    OutputError,
    ParameterError,
    StoreError,
    StoreLockedError,
    StoreMismatchError,
    SweepError,
    SweepFailuresWarning,
    XsweepError,
)
from .parameters import Parameter
from .plotting import figure_to_array
from .space import ParameterSpace

__all__ = [
    "OutputError",
    "Parameter",
    "ParameterError",
    "ParameterSpace",
    "StoreError",
    "StoreLockedError",
    "StoreMismatchError",
    "SweepError",
    "SweepFailuresWarning",
    "XsweepError",
    "__version__",
    "figure_to_array",
]
