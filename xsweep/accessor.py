"""The ``ds.xsweep`` accessor: status, failures, montage and explore on any results Dataset.

It works on a Dataset from ``ps.sweep`` or from ``xr.open_dataset`` of a shared file: it
reads only what the file itself says (the CF flag variables and their attributes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .store import FAILED, FLAG_MEANINGS


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

    def _status_vars(self) -> dict[str, str]:
        """Function name -> its status variable name."""
        out = {}
        for name, var in self._ds.data_vars.items():
            meanings = str(var.attrs.get("flag_meanings", ""))
            # 0.1 files lack the last meaning (computed_no_value): same codes otherwise.
            if FLAG_MEANINGS.startswith(meanings) and meanings and str(name).endswith("_status"):
                out[var.attrs.get("xsweep_name", str(name)[: -len("_status")])] = str(name)
        return out

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

        rows = {}
        for fn, var in self._status_vars().items():
            values = np.asarray(self._ds[var].values).ravel()
            rows[fn] = {
                "not_computed": int((values == 0).sum()),
                "computed": int(((values == 1) | (values == 3)).sum()),
                "failed": int((values == 2).sum()),
                "no_value": int((values == 3).sum()),
            }
        columns = ["not_computed", "computed", "failed", "no_value"]
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
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

        frames = []
        for fn, var in self._status_vars().items():
            if function is not None and fn != function:
                continue
            status = self._ds[var]
            codes = self._ds.get(f"{fn}_error")
            messages = self._ds.get(f"{fn}_messages")
            for index in np.flatnonzero(np.asarray(status.values).ravel() == FAILED):
                cell = np.unravel_index(index, status.shape)
                row: dict[str, Any] = {"function": fn}
                row.update({d: status[d].values[i].item() for d, i in zip(status.dims, cell)})
                code = int(np.asarray(codes.values)[cell]) if codes is not None else 0
                row["error"] = (
                    str(messages.values[code - 1]) if code and messages is not None else ""
                )
                frames.append(row)
        if not frames:
            return pd.DataFrame(columns=["function", "error"])
        return pd.DataFrame(frames)

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
