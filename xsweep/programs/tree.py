"""Reading a folder tree of earlier runs as one Dataset (TINC's ``DataPool`` and
``parameter_space_tools``).

:func:`open_tree` takes a path template such as ``"runs/length={length}/width={width}/out.json"``,
finds every file that matches it, reads each parameter's values off the paths (numbers where
they look like numbers), and returns a Dataset over those parameters, cells without a file
left not computed. With ``cache=`` it writes an xsweep results file too, so that a folder of
old runs becomes one file to share.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import string
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ..errors import SkipCell, SweepFailuresWarning, XsweepError, warn_user
from .command import as_dataset
from .readers import Reader, reader_for

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def open_tree(
    pattern: str | os.PathLike[str],
    *,
    outputs: Mapping[str, str | tuple[str, Reader]] | None = None,
    reader: Reader | None = None,
    name: str | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """The runs laid out in a folder tree, as one Dataset over the parameters in the paths.

    Parameters
    ----------
    pattern : str
        A path template whose ``{name}`` fields are parameters, e.g.
        ``"runs/length={length}/width={width}/out.json"`` (one output, named after the file:
        ``out``); with ``outputs``, the template of each run's folder.
    outputs : dict, optional
        Output name -> file in the run's folder, or ``(file, reader)``.
    reader : callable, optional
        Reads the pattern's file (``reader(path) -> value``); by default by its extension
        (see :mod:`xsweep.programs.readers`).
    name : str, optional
        The name results are stored under (default: the output's, or ``"tree"``).
    cache : str, optional
        Also write them to this xsweep results file (made, or extended: the tree's earlier
        results in it are replaced by a fresh read of every run).

    Returns
    -------
    xarray.Dataset
        Parameters as dims (their values sorted), the outputs as variables; cells without
        a file are not computed (NaN: integer outputs then come back as floats). A file
        that cannot be read is a failed cell with the reason (``ds.xsweep.failures()``).

    Examples
    --------
    >>> import json, os, tempfile, xsweep as xs
    >>> runs = tempfile.mkdtemp()
    >>> for length in (1, 2):
    ...     for width in (0.5, 1.5):
    ...         if (length, width) == (2, 1.5):
    ...             continue                          # this run never happened
    ...         folder = os.path.join(runs, f"length={length}", f"width={width}")
    ...         os.makedirs(folder)
    ...         with open(os.path.join(folder, "out.json"), "w") as f:
    ...             json.dump(length * width, f)
    >>> ds = xs.open_tree(os.path.join(runs, "length={length}", "width={width}", "out.json"))
    >>> ds["out"].values.tolist()
    [[0.5, 1.5], [1.0, nan]]
    >>> ds["length"].values.tolist(), ds["width"].values.tolist()
    ([1, 2], [0.5, 1.5])
    >>> ds.xsweep.status.values.tolist()
    [[1, 1], [1, 0]]
    """
    from ..parameters.parameter import Parameter
    from ..space.parameter_space import ParameterSpace

    pattern = os.fspath(pattern)
    if outputs is None:
        key = name or os.path.splitext(os.path.basename(pattern))[0] or "tree"
        files = {key: ("", reader or reader_for(pattern))}
        folder_pattern = pattern
    else:
        if reader is not None:
            raise XsweepError("Give readers per output in outputs=, not reader=, with outputs=.")
        files = {}
        for key, spec in outputs.items():
            path, read = (spec, None) if not isinstance(spec, tuple) else spec
            files[str(key)] = (str(path), read or reader_for(str(path)))
        folder_pattern = pattern
    fields, regex, wildcard = _compile(folder_pattern)
    raw: dict[tuple[str, ...], str] = {}
    for path in sorted(glob.glob(wildcard)):
        match = regex.fullmatch(path)
        if match is None or (outputs is not None and not os.path.isdir(path)):
            continue
        raw[tuple(match.group(f) for f in fields)] = path
    if not raw:
        _no_match(pattern, folder_pattern, wildcard, outputs is not None)
    numeric = _numeric(raw, fields, folder_pattern)
    found: dict[tuple, str] = {}
    for texts, path in raw.items():
        if any(n and _parse(t) is None for t, n in zip(texts, numeric)):
            continue  # a stray folder, named in _numeric's warning
        values = tuple(_parse(t) if n else t for t, n in zip(texts, numeric))
        if values in found:
            raise XsweepError(
                f"Two runs have the same parameter values {dict(zip(fields, values))}: "
                f"{found[values]} and {path}. Move one away."
            )
        found[values] = path
    axes = [_axis([v[i] for v in found]) for i in range(len(fields))]
    space = ParameterSpace([Parameter(f, values=a) for f, a in zip(fields, axes)])
    key = name or (next(iter(files)) if outputs is None else "tree")
    reads = _Reads(found, files, fields, outputs is None, key)
    if cache is not None:
        space.enable_cache(cache)
        # The runs are read anew each time: a file may have changed or gone since.
        space.clear_cache(reads)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SweepFailuresWarning)
            ds = space.sweep(reads, name=key, progress=False)
    finally:
        if cache is not None:
            space.disable_cache()
    for w in caught:
        if not issubclass(w.category, SweepFailuresWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    failed = int((ds.xsweep.status == 2).sum())
    if failed:
        runs = "1 run" if failed == 1 else f"{failed} runs"
        warn_user(
            f"{runs} could not be read and count as failed cells; ds.xsweep.failures() "
            "lists them with the reason.",
            SweepFailuresWarning,
        )
    return ds


class _Reads:
    """The function swept over the tree: reads a cell's files, skips cells without one."""

    def __init__(
        self,
        found: dict[tuple, str],
        files: dict[str, tuple[str, Reader]],
        fields: list[str],
        single: bool,
        name: str,
    ) -> None:
        self.found = {tuple(_key(v) for v in values): path for values, path in found.items()}
        self.files = files
        self.fields = fields
        self.single = single
        import inspect

        self.__signature__ = inspect.Signature(
            [inspect.Parameter(f, inspect.Parameter.POSITIONAL_OR_KEYWORD) for f in fields]
        )
        self.__name__ = self.__qualname__ = name  # the results' name, as sweep(name=) gives
        h = hashlib.sha256(json.dumps(sorted(files)).encode())
        from ..functions.fingerprint import fingerprint

        for key, (path, read) in sorted(files.items()):
            h.update(f"{key}\0{path}\0{fingerprint(read)}".encode())
        #: The runs are the data, not the code: the version is the layout and the readers.
        self.__xsweep_version__ = "tree:" + h.hexdigest()[:16]

    def __call__(self, *args: Any) -> Any:
        path = self.found.get(tuple(_key(v) for v in args))
        if path is None:
            raise SkipCell  # no run there: not computed
        if self.single:
            ((key, (_, read)),) = self.files.items()
            return as_dataset({key: _read(read, path, key)}, {})
        out = {}
        for key, (relative, read) in self.files.items():
            file = os.path.join(path, relative)
            if not os.path.isfile(file):
                raise XsweepError(f"{file} is missing (output {key!r} of the run in {path}).")
            out[key] = _read(read, file, key)
        return as_dataset(out, {})


def _read(read: Reader, path: str, key: str) -> Any:
    """``read(path)``; a failure names the file (a JSON error alone says only a line)."""
    try:
        return read(path)
    except (SkipCell, XsweepError):
        raise
    except Exception as exc:
        raise XsweepError(
            f"Could not read {path} (output {key!r}): {type(exc).__name__}: {exc}"
        ) from exc


def _numeric(raw: dict[tuple[str, ...], str], fields: list[str], pattern: str) -> list[bool]:
    """Which parameters are numbers: those whose values in the paths all read as numbers,
    or all but a minority of stray folders (``temp=abc`` among ``temp=10``, ``temp=20``),
    which are left out with a warning naming them, rather than turning every value into
    text (where ``.sel(temp=10)`` finds nothing)."""
    numeric = []
    for i, field in enumerate(fields):
        texts = {v[i] for v in raw}
        stray = sorted(t for t in texts if _parse(t) is None)
        numeric.append(len(stray) < len(texts) - len(stray))
        if numeric[-1] and stray:
            # Paths have as many components as the template: values hold no separator.
            depth = next(k for k, c in enumerate(pattern.split(os.sep)) if f"{{{field}}}" in c)
            folders = sorted(
                {os.sep.join(p.split(os.sep)[: depth + 1]) for v, p in raw.items() if v[i] in stray}
            )
            more = f" and {len(folders) - 5} more" if len(folders) > 5 else ""
            shown = ", ".join(folders[:5]) + more
            it = "it" if len(folders) == 1 else "them"
            warn_user(
                f"open_tree: {field} reads as a number in {len(texts) - len(stray)} "
                f"folders but not in {shown}: {'it is' if it == 'it' else 'they are'} "
                f"left out, and {field} stays numeric (ds.sel({field}=...) takes numbers). "
                f"To read {it}, rename {it} to numbers, or move {it} out of the tree.",
                UserWarning,
            )
    return numeric


def _no_match(pattern: str, folder_pattern: str, wildcard: str, folders: bool) -> None:
    """Raise the error for a template no path matches, saying why when it can tell."""
    names = _names(folder_pattern)
    twice = sorted({f for f in names if names.count(f) > 1})
    if twice:
        loose = _compile(folder_pattern, loose=True)[1]
        near = [p for p in sorted(glob.glob(wildcard)) if loose.fullmatch(p)]
        if near:
            which = ", ".join("{" + f + "}" for f in twice)
            fit = (
                f"the 1 path that fits it otherwise differs there ({near[0]})"
                if len(near) == 1
                else f"the {len(near)} paths that fit it otherwise differ there (e.g. {near[0]})"
            )
            raise XsweepError(
                f"The template {pattern!r} names {which} more than once, so every place must "
                f"hold the same value; {fit}. Give each place a name of its own, e.g. "
                f"{{{twice[0]}}} and {{{twice[0]}_2}}: each becomes a dim."
            )
    what = "folder" if folders else "file"
    raise XsweepError(
        f"No {what} matches {pattern!r} (looked for {wildcard!r}). Check the template: its "
        "{name} fields stand for the parameter values in the paths."
    )


def _names(pattern: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]


def _compile(pattern: str, loose: bool = False) -> tuple[list[str], re.Pattern, str]:
    """The template's fields, a regex that matches its paths, and a glob that finds them.

    A field named twice must hold the same value in both places; ``loose``: any value.
    """
    fields: list[str] = []
    regex, wildcard = "", ""
    for literal, field, spec, conversion in string.Formatter().parse(pattern):
        regex += re.escape(literal)
        wildcard += glob.escape(literal)
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise XsweepError(
                f"The pattern {pattern!r} uses {{{field}}}: fields are plain parameter names."
            )
        if field in fields:
            regex += "[^/]+" if loose else f"(?P={field})"
        else:
            fields.append(field)
            regex += f"(?P<{field}>[^/]+)"
        wildcard += "*"
    if not fields:
        raise XsweepError(
            f"The pattern {pattern!r} names no parameter: write the varying parts of the "
            "paths as {name}, e.g. 'runs/length={length}/out.json'."
        )
    return fields, re.compile(regex), wildcard


def _parse(text: str) -> int | float | None:
    """The number ``text`` reads as (ints stay ints), else None."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return None


def _axis(values: list[Any]) -> list[Any]:
    """A parameter's values, sorted: text, or numbers (floats if any is)."""
    if any(isinstance(v, str) for v in values):
        return sorted({str(v) for v in values})
    if any(isinstance(v, float) for v in values):
        return sorted({float(v) for v in values})
    return sorted(set(values))


def _key(value: Any) -> Any:
    """A value as a lookup key (the space passes numpy scalars as Python ones)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return str(value)
