"""The codes and names a results file is made of: cell statuses and variable names."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE = 0, 1, 2, 3


FLAG_VALUES = np.array([NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE], dtype=np.int8)


FLAG_MEANINGS = "not_computed computed failed computed_no_value"


#: Statuses of cells that are done: computed, with a value or without one (``None``).
DONE = (COMPUTED, NO_VALUE)


FORMAT_VERSION = "1"


#: Coordinates as the space hands them to a store: name -> (values, attrs), in dim order.
Coords = dict[str, tuple[np.ndarray, dict[str, Any]]]


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
