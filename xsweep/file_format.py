"""The codes and names a results file is made of: the one place its layout is spelled.

A function ``f``'s results are stored as its output variables plus four bookkeeping
variables over the same parameter dims: ``f_status`` (a CF flag variable: the codes below),
``f_seconds``, ``f_error`` (0, or k for message k of ``f_messages``) and ``f_messages`` along
the dim ``f_message``. The ``xsweep_*`` attributes below say how to read them back. Everything
that reads or writes those names, in ``store/`` and ``outputs/`` alike, uses the constants
here, so this module sits at the bottom of the package and imports nothing of it.
``docs/file_format.md`` describes the same layout for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np

NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE = 0, 1, 2, 3


FLAG_VALUES = np.array([NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE], dtype=np.int8)


FLAG_MEANINGS = "not_computed computed failed computed_no_value"


#: Statuses of cells that are done: computed, with a value or without one (``None``).
DONE = (COMPUTED, NO_VALUE)


FORMAT_VERSION = "1"

#: The status codes and what each means, in the words of the file's ``flag_meanings``.
STATUS_MEANINGS = dict(zip(FLAG_VALUES.tolist(), FLAG_MEANINGS.split()))


def describe_codes() -> str:
    """The status codes in words, for messages about a file that holds others.

    Examples
    --------
    >>> from xsweep.file_format import describe_codes
    >>> describe_codes()
    '0 (not_computed), 1 (computed), 2 (failed), 3 (computed_no_value)'
    """
    return ", ".join(f"{code} ({meaning})" for code, meaning in STATUS_MEANINGS.items())


# --- global attributes of a results file ---------------------------------------------------------
#: The layout's version (``FORMAT_VERSION``); a file without it is not xsweep's.
FORMAT_ATTR = "xsweep_format"
#: The xsweep version that wrote the file (for people; never checked).
VERSION_ATTR = "xsweep_version"
#: Changes with every publish; a journal names the generation it extends.
GENERATION_ATTR = "xsweep_generation"
#: JSON list of the function keys stored, in order.
FUNCTIONS_ATTR = "xsweep_functions"
#: JSON list of the parameter names (the grid's dims), in order.
PARAMETERS_ATTR = "xsweep_parameters"

# --- attributes and variables of a continuous parameter (``bounds=``; see ps.refine) -------
#: On a parameter's coordinate: ``[low, high]``, the range its values may take (refinement
#: adds values inside it, never outside).
BOUNDS_ATTR = "xsweep_bounds"


def refinement_round_name(parameter: str) -> str:
    """The variable that says which refinement round added each value of ``parameter``.

    A non-index coordinate along the parameter's dim: 0 for the values a space declared,
    ``k`` for those round ``k`` of ``ps.refine`` added.

    Examples
    --------
    >>> from xsweep.file_format import refinement_round_name
    >>> refinement_round_name("x")
    'x_refinement_round'
    """
    return f"{parameter}_refinement_round"


def refinement_round_attrs(parameter: str) -> dict[str, str]:
    """The attributes of ``parameter``'s refinement round variable (for people and CF).

    Examples
    --------
    >>> from xsweep.file_format import refinement_round_attrs
    >>> refinement_round_attrs("x")["long_name"]
    'refinement round that added each value of x'
    """
    return {
        "long_name": f"refinement round that added each value of {parameter}",
        "description": "0: a declared value; k: added by round k of ParameterSpace.refine",
    }


# --- attributes of a function's status variable ----------------------------------------------
#: The function's key (its status variable's owner).
FUNCTION_ATTR = "xsweep_function"
#: The name its variables are made from (``variable_prefix`` of the function).
NAME_ATTR = "xsweep_name"
#: The kind of output the function returns (scalar, array, dict, ...).
KIND_ATTR = "xsweep_kind"
#: JSON list of the function's output variable names.
OUTPUTS_ATTR = "xsweep_outputs"
#: The fingerprint of the code that computed the cells.
FINGERPRINT_ATTR = "xsweep_fingerprint"
#: JSON list of earlier fingerprints whose cells are kept (``version=`` options).
KEPT_FINGERPRINTS_ATTR = "xsweep_kept_fingerprints"
#: On the error codes: the messages, when kept as an attribute.
MESSAGES_ATTR = "xsweep_messages"
#: The part(s) of the cells the file was asked to compute, ``"k/n"`` (``"1/4,3/4"`` for
#: several), written when a ``sweep(part=(k, n))`` starts, before any cell.
PART_ATTR = "xsweep_part"
#: How many cells each of those parts holds (ints, in the order of ``PART_ATTR``).
PART_CELLS_ATTR = "xsweep_part_cells"
#: JSON object: per parameter dim, ``"all"`` or the indices of the values whose cells were
#: dealt to the parts, in the order they were dealt (see ``xsweep.store.parts``).
PART_SELECTION_ATTR = "xsweep_part_selection"

# --- attributes of an output variable ---------------------------------------------------------
#: How the stored values decode to what the function returned (json, image:RGB, complex, ...).
ENCODING_ATTR = "xsweep_encoding"
#: A pandas column's or index's metadata, JSON.
PANDAS_ATTR = "xsweep_pandas"
#: The dtype the function returned, where the file or a Dataset holds another (holes, bools).
DTYPE_ATTR = "xsweep_dtype"
#: Set where holes of an output without a free value are only known from the status.
HOLES_ATTR = "xsweep_holes"
#: The extent of each cell along a ragged output dim (the rest is padding).
EXTENT_ATTR = "xsweep_extent"
#: The output's own dims, where the file renamed them (``function_dim``).
DIMS_ATTR = "xsweep_dims"
#: The dims as the function returned them (a DataArray's or Dataset's own names).
RETURNED_DIMS_ATTR = "xsweep_returned_dims"

#: What a generation (``GENERATION_ATTR``) looks like: 32 lowercase hex digits. Staged files
#: are named after theirs, so a name that does not match is not a staged file of ours.
GENERATION_ID = re.compile(r"[0-9a-f]{32}")

# --- the files next to a results file while a sweep writes it ------------------------------
#: ``<file>.journal``: the cells finished since the file was last published.
JOURNAL_SUFFIX = ".journal"
#: ``<file>.lock``: the writer lock.
LOCK_SUFFIX = ".lock"
#: ``<file>.xsweep-tmp-<pid>``: a snapshot being written (or a journal being freed).
TEMP_MARK = ".xsweep-tmp-"
#: ``<file>.xsweep-stage-<generation>``: the next snapshot, big cells written in place.
STAGE_MARK = ".xsweep-stage-"


#: Coordinates as plain tuples: name -> (values, attrs), in dim order.
Coords = dict[str, tuple[np.ndarray, dict[str, Any]]]

#: Columns of a status summary, in order.
STATUS_COLUMNS = ("not_computed", "computed", "failed", "no_value")


class VariableNames(NamedTuple):
    """The names of a function's bookkeeping variables (and its messages' dim)."""

    status: str
    seconds: str
    error: str
    messages: str
    message_dim: str


def variable_names(name: str) -> VariableNames:
    """The bookkeeping variable names of the function whose results are named ``name``.

    Examples
    --------
    >>> from xsweep.file_format import variable_names
    >>> variable_names("render").status
    'render_status'
    """
    return VariableNames(
        f"{name}_status", f"{name}_seconds", f"{name}_error", f"{name}_messages", f"{name}_message"
    )


def function_dim(name: str, dim: str) -> str:
    """The file's name for output dim ``dim`` of function ``name`` when ``dim`` is taken.

    Examples
    --------
    >>> from xsweep.file_format import function_dim
    >>> function_dim("save_graph3", "x")
    'save_graph3_x'
    """
    return f"{name}_{dim}"


def status_counts(status: np.ndarray) -> dict[str, int]:
    """Cells per status; ``computed`` includes those that returned None (``no_value``).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.file_format import status_counts
    >>> status_counts(np.array([0, 1, 2, 3]))
    {'not_computed': 1, 'computed': 2, 'failed': 1, 'no_value': 1}
    """
    status = np.asarray(status)
    return {
        "not_computed": int((status == NOT_COMPUTED).sum()),
        "computed": int(np.isin(status, DONE).sum()),
        "failed": int((status == FAILED).sum()),
        "no_value": int((status == NO_VALUE).sum()),
    }


def failed_rows(
    dims: Sequence[str],
    status: np.ndarray,
    label: Callable[[tuple[int, ...]], dict[str, Any]],
    message: Callable[[int, tuple[int, ...]], str],
    first: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per failed cell: ``first``, the cell's parameter values, then ``error``.

    ``status`` has shape of the grid over ``dims``; ``label(cell)`` gives a cell's parameter
    values, ``message(flat, cell)`` its error message.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.file_format import failed_rows
    >>> failed_rows(("a",), np.array([1, 2]), lambda c: {"a": c[0] * 10}, lambda f, c: "boom")
    [{'a': 10, 'error': 'boom'}]
    """
    status = np.asarray(status)
    rows = []
    for flat in np.flatnonzero(status.ravel() == FAILED):
        cell = tuple(int(i) for i in np.unravel_index(flat, status.shape))
        row = dict(first or {})
        row.update(label(cell))
        row["error"] = message(int(flat), cell)
        rows.append(row)
    return rows


def status_variables(ds: Any) -> dict[str, str]:
    """In a Dataset (or an open file's variables): function name -> its status variable.

    A status variable is recognised by its CF flag attributes, as a colleague's tools
    would; files of 0.1 lack the last meaning (``computed_no_value``), same codes otherwise.
    """
    out = {}
    # A swept Dataset holds them as coordinates, a file (xr.open_dataset) as data variables.
    variables = ds.variables if hasattr(ds, "data_vars") else ds
    for name, var in variables.items():
        meanings = str(var.attrs.get("flag_meanings", ""))
        if meanings and FLAG_MEANINGS.startswith(meanings) and str(name).endswith("_status"):
            out[str(var.attrs.get(NAME_ATTR, str(name)[: -len("_status")]))] = str(name)
    return out


def is_bookkeeping(ds: Any, name: Hashable) -> bool:
    """Whether variable ``name`` of a Dataset is a function's bookkeeping, not an output."""
    if "flag_meanings" in ds[name].attrs:
        return True
    for fn in status_variables(ds):
        if name in variable_names(fn):
            return True
    return False


def variable_prefix(fn_name: str) -> str:
    """The name a function's variables are made from: its ``__name__`` made NetCDF-safe.

    Examples
    --------
    >>> from xsweep.store import variable_prefix
    >>> variable_prefix("<lambda>")
    'lambda'
    """
    name = re.sub(r"\W+", "_", fn_name).strip("_")
    return name or "output"


def default_long_name(output: str, function: str) -> str:
    """The ``long_name`` a file gives an output that has none (CF recommends one).

    Examples
    --------
    >>> from xsweep.file_format import default_long_name
    >>> default_long_name("stress", "beam"), default_long_name("beam", "beam")
    ('stress, returned by beam', 'the value returned by beam')
    """
    return (
        f"the value returned by {function}"
        if output == function
        else (f"{output}, returned by {function}")
    )
