"""The ``ds.xsweep`` accessor: status, failures, montage and explore on any results Dataset.

It works on a Dataset from ``ps.sweep`` or from ``xr.open_dataset`` of a shared file: it
reads only what the file itself says (the CF flag variables and their attributes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .store import STATUS_COLUMNS, failed_rows, status_counts, status_variables, variable_names


@xr.register_dataset_accessor("xsweep")
class XsweepAccessor:
    """Helpers for xsweep results, available as ``ds.xsweep`` once xsweep is imported.

    Examples
    --------
    >>> import xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    >>> ds = ps.sweep(lambda a: a * 10)
    >>> ds.xsweep.status()
              not_computed  computed  failed  no_value
    function
    lambda               0         3       0         0
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def status(self):
        """Counts of not computed, computed and failed cells per function (a DataFrame).

        ``computed`` includes the cells whose function returned ``None``, also counted in
        ``no_value``.

        Examples
        --------
        >>> import xsweep as xs
        >>> ds = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])]).sweep(lambda a: a)
        >>> int(ds.xsweep.status().loc["lambda", "computed"])
        2
        """
        import pandas as pd

        rows = {
            fn: status_counts(self._ds[var].values)
            for fn, var in status_variables(self._ds).items()
        }
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(STATUS_COLUMNS))
        frame.index.name = "function"
        return frame

    def failures(self, function: str | None = None):
        """The failed cells with their messages (a DataFrame); one function's or all.

        Examples
        --------
        >>> import warnings, xsweep as xs
        >>> def inverse(a):
        ...     return 1 / a
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds = xs.ParameterSpace([xs.Parameter("a", values=[0, 1])]).sweep(inverse)
        >>> ds.xsweep.failures().to_dict("records")
        [{'function': 'inverse', 'a': 0, 'error': 'ZeroDivisionError: division by zero'}]
        """
        import pandas as pd

        rows = []
        for fn, var in status_variables(self._ds).items():
            if function is not None and fn != function:
                continue
            status = self._ds[var]
            names = variable_names(fn)
            codes = self._ds.get(names.error)
            messages = self._ds.get(names.messages)

            def message(flat: int, cell: tuple, codes=codes, messages=messages) -> str:
                code = int(np.asarray(codes.values)[cell]) if codes is not None else 0
                return str(messages.values[code - 1]) if code and messages is not None else ""

            rows += failed_rows(
                status.dims,
                status.values,
                lambda cell, status=status: {
                    d: status[d].values[i].item() for d, i in zip(status.dims, cell)
                },
                message,
                first={"function": fn},
            )
        if not rows:
            return pd.DataFrame(columns=["function", "error"])
        return pd.DataFrame(rows)

    def montage(self, var: str, row: str | None = None, col: str | None = None, **kwargs: Any):
        """A contact sheet of the image variable ``var``: see :func:`xsweep.montage`.

        Examples
        --------
        >>> import numpy as np, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ds = ps.sweep(lambda a: np.full((4, 4, 3), 50 * a, np.uint8))
        >>> ds.xsweep.montage("lambda", col="a", label=False, pad=0).size
        (8, 4)
        """
        from .plotting import montage

        return montage(self._ds[var], row=row, col=col, **kwargs)

    def explore(self, var: str | None = None):
        """Sliders over the parameter dims and the selected cell: see :func:`xsweep.explore`.

        Examples
        --------
        >>> import xsweep as xs
        >>> ds = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])]).sweep(lambda a: a * 3)
        >>> view = ds.xsweep.explore()
        >>> view.controls["a"].value = 2
        >>> view.text.value
        '<pre>6</pre>'
        """
        from .widgets import DatasetExplorer

        return DatasetExplorer(self._ds, var)
