"""The ``ds.xsweep`` accessor: status, failures, montage and explore on any results Dataset.

It works on a Dataset from ``ps.sweep`` or from ``xr.open_dataset`` of a shared file: it
reads only what the file itself says (the CF flag variables and their attributes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import xarray as xr

from ..errors import XsweepError
from ..file_format import MESSAGES_ATTR
from ..store import STATUS_COLUMNS, failed_rows, status_counts, status_variables, variable_names

if TYPE_CHECKING:  # imported when used
    import pandas as pd
    import PIL.Image

    from ..file_format import VariableNames
    from .widgets import DatasetExplorer


@xr.register_dataset_accessor("xsweep")
class XsweepAccessor:
    """Helpers for xsweep results, available as ``ds.xsweep`` once xsweep is imported.

    A swept Dataset's data variables are the function's outputs; each cell's status, the
    seconds it took and its failure message are one step away here (they ride along as
    coordinates; in a shared file they are variables: both work).

    Examples
    --------
    >>> import xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    >>> ds = ps.sweep(lambda a: a * 10)
    >>> list(ds.data_vars)
    ['lambda']
    >>> ds.xsweep.status.values.tolist()
    [1, 1, 1]
    >>> ds.xsweep.counts()
              not_computed  computed  failed  no_value
    function
    lambda               0         3       0         0
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def functions(self) -> list[str]:
        """The names of the functions whose results the Dataset holds.

        Examples
        --------
        >>> import xsweep as xs
        >>> def double(a):
        ...     return 2 * a
        >>> xs.ParameterSpace([xs.Parameter("a", values=[1])]).sweep(double).xsweep.functions()
        ['double']
        """
        return list(status_variables(self._ds))

    def _variable(self, function: str | None, what: str) -> xr.DataArray:
        found = status_variables(self._ds)
        if function is None:
            if len(found) != 1:
                raise XsweepError(
                    f"The Dataset holds the results of {len(found)} functions {list(found)}; "
                    f"say which: ds.xsweep.{what}_of(name)."
                    if found
                    else "The Dataset holds no xsweep results (no status variable)."
                )
            function = next(iter(found))
        if function not in found:
            raise XsweepError(f"No results of {function!r} here; the Dataset has {list(found)}.")
        names = variable_names(function)
        name = names.status if what == "status" else names.seconds
        if name not in self._ds.variables:
            raise XsweepError(
                f"The Dataset has no {name!r} variable. A Dataset a sweep returns carries no "
                "timings (they would make two runs' results differ): ps.seconds(fn) gives "
                f"them, and so does the cache file (xr.open_dataset(path)[{name!r}])."
            )
        return self._ds[name]

    @property
    def status(self) -> xr.DataArray:
        """Each cell's status: 0 not computed, 1 computed, 2 failed, 3 computed, no value.

        For a Dataset of one function (see :meth:`status_of` for several). The codes and
        their meanings are in the CF attributes ``flag_values`` and ``flag_meanings``.

        Examples
        --------
        >>> import warnings, xsweep as xs
        >>> def inverse(a):
        ...     return 1 / a
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds = xs.ParameterSpace([xs.Parameter("a", values=[0, 1])]).sweep(inverse)
        >>> ds.xsweep.status.values.tolist()
        [2, 1]
        """
        return self._variable(None, "status")

    @property
    def seconds(self) -> xr.DataArray:
        """How long each cell took to compute, in seconds (NaN where it was not computed).

        In a results file (``xr.open_dataset``); a Dataset a sweep returns carries no
        timings: ``ps.seconds(fn)`` gives them (the error says so).

        Examples
        --------
        >>> import os, tempfile, xarray as xr, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
        >>> _ = ps.sweep(lambda a: a)
        >>> with xr.open_dataset(ps.cache_path) as shared:
        ...     bool((shared.xsweep.seconds >= 0).all())
        True
        """
        return self._variable(None, "seconds")

    def status_of(self, function: str) -> xr.DataArray:
        """:attr:`status` of one of several functions (a merged file, say).

        Examples
        --------
        >>> import xsweep as xs
        >>> ds = xs.ParameterSpace([xs.Parameter("a", values=[1])]).sweep(lambda a: a)
        >>> ds.xsweep.status_of("lambda").values.tolist()
        [1]
        """
        return self._variable(function, "status")

    def seconds_of(self, function: str) -> xr.DataArray:
        """:attr:`seconds` of one of several functions (in a results file).

        Examples
        --------
        >>> import os, tempfile, xarray as xr, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
        >>> _ = ps.sweep(lambda a: a)
        >>> with xr.open_dataset(ps.cache_path) as shared:
        ...     shared.xsweep.seconds_of("lambda").dims
        ('a',)
        """
        return self._variable(function, "seconds")

    def counts(self) -> pd.DataFrame:
        """Counts of not computed, computed and failed cells per function (a DataFrame).

        ``computed`` includes the cells whose function returned ``None``, also counted in
        ``no_value``.

        Examples
        --------
        >>> import xsweep as xs
        >>> ds = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])]).sweep(lambda a: a)
        >>> int(ds.xsweep.counts().loc["lambda", "computed"])
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

    def failures(self, function: str | None = None) -> pd.DataFrame:
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
            if codes is None and names.error in self._ds.coords:
                codes = self._ds.coords[names.error]
            messages = _messages(self._ds, names, codes)

            def message(
                flat: int,
                cell: tuple,
                codes: xr.DataArray | None = codes,
                messages: list[str] = messages,
            ) -> str:
                code = int(np.asarray(codes.values)[cell]) if codes is not None else 0
                return str(messages[code - 1]) if 0 < code <= len(messages) else ""

            rows += failed_rows(
                cast(tuple[str, ...], status.dims),  # a results file's: names
                status.values,
                lambda cell, status=status: {  # type: ignore[misc]  # mypy cannot type a lambda with a default
                    d: status[d].values[i].item() for d, i in zip(status.dims, cell)
                },
                message,
                first={"function": fn},
            )
        if not rows:
            return pd.DataFrame(columns=["function", "error"])
        return pd.DataFrame(rows)

    def montage(
        self, var: str, row: str | None = None, col: str | None = None, **kwargs: Any
    ) -> PIL.Image.Image:
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

    def explore(self, var: str | None = None) -> DatasetExplorer:
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


def _messages(ds: xr.Dataset, names: VariableNames, codes: xr.DataArray | None) -> list[str]:
    """The distinct failure messages: a variable in a file, an attribute in a swept Dataset."""
    if names.messages in ds.variables:
        return [str(m) for m in np.asarray(ds[names.messages].values).tolist()]
    if codes is not None:
        found = codes.attrs.get(MESSAGES_ATTR, [])
        return [str(found)] if isinstance(found, str) else [str(m) for m in found]
    return []
