"""Turn what a swept function returned into typed, shaped cell values, and back.

The first successful cell fixes an :class:`OutputSpec` (names, dtypes, shapes, extra dims);
every later cell is checked against it by :meth:`OutputSpec.extract`, which runs once per cell
and so stays lean: no xarray object is built per cell.

Values a NetCDF file has no type for are stored natively, in a form plain ``xarray`` reads
(never pickled), and given back as the function returned them (docs/outputs.md):

* a list or tuple of numbers or strings: an array;
* a PIL image: an array over ``y``, ``x`` and a band dim named after the mode;
* a pandas Series or DataFrame: variables over the index, laid out as ``to_xarray()`` does;
* ``datetime64`` and ``timedelta64``: int64 with CF ``units``, which xarray decodes;
* complex numbers: floats with a trailing (real, imag) dim;
* other nested values (dicts of dicts, lists mixing kinds): JSON text.

A variable's encoding is its ``xsweep_encoding`` attribute, and a pandas output's layout its
``xsweep_pandas`` attribute: both are read back from the file's attributes, so the store knows
none of this. Plain scalars and arrays have no encoding and keep the per-cell fast path.

Modules, each importing only those before it: ``base`` (what may be returned, in words,
and the checks all share), ``encodings`` (lists, images, times, complex numbers, JSON),
``frames`` (the layout of pandas outputs), ``spec`` (``VariableSpec`` and ``OutputSpec``: the
per-cell checks), ``infer`` (the structure from a first cell) and ``grow`` (ragged outputs:
the structure grown to hold arrays of varying shape); ``images`` (``ImageArray``, the pixels
of ``figure_to_array``) stands apart, used by ``infer``.
"""

from .base import ALLOWED_OUTPUTS, CONVERT_HINT
from .grow import grow_spec, union_spec
from .infer import infer_spec
from .spec import OutputSpec, VariableSpec

__all__ = [
    "ALLOWED_OUTPUTS",
    "CONVERT_HINT",
    "OutputSpec",
    "VariableSpec",
    "grow_spec",
    "infer_spec",
    "union_spec",
]
