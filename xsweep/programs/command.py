"""Sweeping a program: a command line run per cell, in a folder of its own, outputs read back.

:func:`command` turns a command line template into a function of the parameters it names,
which ``sweep``, ``sweep_async``, ``run_process`` and ``explore`` take like any function (TINC's
``ProcessorScript``). Per cell it:

1. makes the cell's working folder from the ``workdir`` template (``{length}`` is the cell's
   value) and removes the declared output files a previous run of this cell left there;
2. runs the program with ``subprocess`` from an argument list, never through a shell (a
   parameter value cannot inject a command), in its own session; its output goes to
   ``.xsweep-stdout`` and ``.xsweep-stderr`` in the folder;
3. on a non-zero exit or a timeout raises :class:`~xsweep.errors.CommandError` (the cell is
   recorded as failed) with the exit status and the end of stderr; else reads each declared
   output file with its reader (:mod:`xsweep.programs.readers`) and returns an ``xarray.Dataset``
   with one variable per output: numbers and text as they are, arrays over ``dims=`` (else
   ``<name>_dim_0``, ...), DataArrays with their own dims and coords, tables (CSV) as one
   variable per column over ``<name>_row``, JSON structures as JSON text.

Killing the sweep does not leave the program running: Ctrl-C, a timeout or an exception kill
its whole process group, and the kernel kills it when the process that started it dies, even
by SIGKILL (``setpriv --pdeathsig``; programs it starts itself are its own business).

The fingerprint that keys cached results covers the template, the outputs and their readers'
code, and the content of every file the template names (``sim.py``, an input deck).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import signal
import string
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import CommandError, XsweepError
from .readers import Reader, reader_for

#: How much of the end of a failed program's stderr its failure message keeps.
STDERR_TAIL = 2000
#: setpriv (util-linux) makes the kernel kill the program when its parent dies.
_SETPRIV = shutil.which("setpriv")


def command(
    args: Sequence[str | os.PathLike[str]],
    *,
    workdir: str | os.PathLike[str] | None = None,
    outputs: Mapping[str, str | tuple[str, Reader]] | None = None,
    timeout: float | None = None,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
) -> Command:
    """A program run per cell, as a function of the parameters its templates name.

    Parameters
    ----------
    args : list of str
        The command line, one argument per item; ``{name}`` is replaced by the cell's value
        of parameter ``name`` (format specs work: ``{rate:.3f}``) and ``{workdir}`` by the
        cell's working folder. Never a single shell string.
    workdir : str, optional
        The cell's working folder, a template naming every parameter of the command, e.g.
        ``"runs/length={length}/width={width}"`` (by default ``runs/<name>=<value>/...``);
        relative to the current folder when ``command`` is called. Made if missing.
    outputs : dict, optional
        Output name -> file (in the working folder, a template too), or ``(file, reader)``
        where ``reader(path)`` returns the value. Files are read by extension otherwise
        (see :mod:`xsweep.programs.readers`). Without outputs the function returns the exit status.
    timeout : float, optional
        Seconds a run may take; a longer one is killed and the cell recorded as failed.
    name : str, optional
        The name results are stored under; by default the script's or program's name.
    env : dict, optional
        Environment variables of the program (default: this process's).
    dims : dict, optional
        Output name -> the names of its array's dims, e.g. ``{"frame": ("y", "x", "rgb")}``.

    Returns
    -------
    Command
        A callable ``fn(**parameter values) -> xarray.Dataset`` (one variable per output)
        with the parameters as its signature.

    Examples
    --------
    >>> import os, sys, tempfile, xsweep as xs
    >>> folder = tempfile.mkdtemp()
    >>> script = os.path.join(folder, "sim.py")
    >>> with open(script, "w") as f:
    ...     _ = f.write("import json, sys\\n"
    ...                 "n = int(sys.argv[1])\\n"
    ...                 "json.dump(n * n, open('out.json', 'w'))\\n")
    >>> sim = xs.command([sys.executable, script, "{n}"],
    ...                  workdir=os.path.join(folder, "runs", "n={n}"),
    ...                  outputs={"result": "out.json"})
    >>> sim
    command sim(n): [..., '{n}'] in .../runs/n={n}, outputs result
    >>> ps = xs.ParameterSpace([xs.Parameter("n", values=[1, 2, 3])])
    >>> ds = ps.sweep(sim)
    >>> ds["result"].values.tolist()
    [1, 4, 9]
    >>> sorted(os.listdir(os.path.join(folder, "runs")))
    ['n=1', 'n=2', 'n=3']
    """
    return Command(
        args, workdir=workdir, outputs=outputs, timeout=timeout, name=name, env=env, dims=dims
    )


class Command:
    """A program run per cell: see :func:`command`, which makes one."""

    def __init__(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        workdir: str | os.PathLike[str] | None = None,
        outputs: Mapping[str, str | tuple[str, Reader]] | None = None,
        timeout: float | None = None,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        dims: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence) or not args:
            raise XsweepError(
                "command() takes the command line as a list of arguments, one per item, "
                "never a shell string (a parameter value could then run commands): e.g. "
                "xs.command(['python', 'sim.py', '--length', '{length}'])."
            )
        self.root = os.getcwd()
        # Files named relative to here (python sim.py) are found from the cell's folder too.
        self.args = [_anchored(_text(a, "an argument"), self.root) for a in args]
        self.workdir = _text(workdir, "workdir") if workdir is not None else ""
        self.timeout = _check_timeout(timeout)
        self.env = dict(env) if env is not None else None
        self.outputs: dict[str, tuple[str, Reader]] = {}
        for key, spec in (outputs or {}).items():
            path, reader = (spec, None) if not isinstance(spec, tuple) else spec
            path = _text(path, f"the file of output {key!r}")
            _check_relative(path, key)
            if reader is None:
                reader = reader_for(path)
            elif not callable(reader):
                raise XsweepError(f"The reader of output {key!r} is not callable: {reader!r:.60}.")
            self.outputs[str(key)] = (path, reader)
        self.dims = {str(k): tuple(str(d) for d in v) for k, v in (dims or {}).items()}
        unknown = sorted(set(self.dims) - set(self.outputs))
        if unknown:
            raise XsweepError(
                f"dims names {unknown}, not outputs; the outputs: {list(self.outputs)}."
            )
        self.fields = _fields([*self.args, self.workdir, *(p for p, _ in self.outputs.values())])
        if workdir is None:  # a folder per cell: runs/a=1/b=2
            self.workdir = os.path.join("runs", *(f"{f}={{{f}}}" for f in self.fields))
        shared = [f for f in self.fields if f not in _fields([self.workdir])]
        if shared:
            example = os.path.join(self.workdir, *(f"{f}={{{f}}}" for f in shared))
            raise XsweepError(
                f"workdir={self.workdir!r} does not name {shared}: cells that differ only in "
                "them would run in one folder and read each other's files. Name every "
                f"parameter of the command in it, e.g. workdir={example!r}, or leave workdir "
                "out (runs/<name>=<value>/...)."
            )
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(f, inspect.Parameter.POSITIONAL_OR_KEYWORD) for f in self.fields]
        )
        self.__name__ = self.__qualname__ = name or _program_name(self.args)
        self._hashes: dict[str, tuple[tuple, str]] = {}  # path -> (stat stamp, hash)
        self._version: str | None = None  # a version declared by hand

    def __repr__(self) -> str:
        outs = ", ".join(self.outputs) or "the exit status"
        return (
            f"command {self.__name__}({', '.join(self.fields)}): {self.args} in "
            f"{os.path.join(self.root, self.workdir)}, outputs {outs}"
        )

    # -- the fingerprint --------------------------------------------------------------------
    @property
    def __xsweep_version__(self) -> str:
        """What keys cached results: templates, outputs, readers' code, named files' content.

        ``@xs.version("2")`` (or ``cmd.__xsweep_version__ = "2"``) declares it by hand.
        """
        if self._version is not None:
            return self._version
        from ..functions.fingerprint import fingerprint

        h = hashlib.sha256()
        layout = [self.args, self.workdir, sorted(self.outputs), sorted(self.dims.items())]
        h.update(json.dumps(layout).encode())
        for key in sorted(self.outputs):
            path, reader = self.outputs[key]
            h.update(f"\0{key}\0{path}\0{fingerprint(reader)}".encode())
        for arg in self.args:
            if not _fields([arg]):
                h.update(b"\0file\0" + self._file_hash(arg).encode())
        return "command:" + h.hexdigest()[:16]

    @__xsweep_version__.setter
    def __xsweep_version__(self, label: str) -> None:
        self._version = label

    def _file_hash(self, arg: str) -> str:
        """The content hash of the file ``arg`` names (relative to the folder of creation)."""
        path = os.path.join(self.root, arg)
        try:
            st = os.stat(path)
        except OSError:
            return ""  # not a file (an option, a program found on PATH)
        if not os.path.isfile(path):
            return ""
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        known = self._hashes.get(path)
        if known is None or known[0] != stamp:  # hashed once per version of the file
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._hashes[path] = known = (stamp, h.hexdigest())
        return known[1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("__signature__", None)  # rebuilt: Signature objects pickle, but slowly
        state["_hashes"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(f, inspect.Parameter.POSITIONAL_OR_KEYWORD) for f in self.fields]
        )

    # -- one cell -----------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values = self.__signature__.bind(*args, **kwargs).arguments
        folder = self.folder(values)
        os.makedirs(folder, exist_ok=True)
        files = {
            key: _inside(folder, _format(path, values, folder), key)
            for key, (path, _) in self.outputs.items()
        }
        for path in files.values():  # a previous run's file must never pass for this run's
            if os.path.lexists(path):
                os.unlink(path)
        argv = [_format(a, values, folder) for a in self.args]
        status = self._run(argv, folder)
        if not self.outputs:
            return status
        out = {}
        for key, path in files.items():
            if not os.path.isfile(path):
                there = sorted(os.listdir(folder))[:12]
                raise CommandError(
                    f"{self.__name__} exited with status 0 but did not write "
                    f"{os.path.relpath(path, folder)} (output {key!r}) in {folder}; the folder "
                    f"holds {there}. Check the program's output path (the end of its stderr "
                    f"is in .xsweep-stderr there)."
                )
            try:
                out[key] = self.outputs[key][1](path)
            except Exception as exc:
                raise CommandError(
                    f"{self.__name__}: could not read {path} (output {key!r}): "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        return as_dataset(out, self.dims)

    def folder(self, values: Mapping[str, Any]) -> str:
        """The working folder of the cell at ``values`` (absolute)."""
        formatted = _format(self.workdir, values, "")
        return os.path.normpath(os.path.join(self.root, formatted))

    def _run(self, argv: list[str], folder: str) -> int:
        program = argv[0]
        path = (self.env or os.environ).get("PATH")
        found = (
            os.path.isfile(os.path.join(folder, program))
            if os.sep in program
            else shutil.which(program, path=path) is not None
        )
        if not found:
            raise CommandError(
                f"Could not find the program {program!r} (from {folder}). Give its absolute "
                "path, or a path relative to the folder you called xs.command() in, or check "
                "that it is on PATH."
            )
        launcher = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        out_path = os.path.join(folder, ".xsweep-stdout")
        err_path = os.path.join(folder, ".xsweep-stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    launcher + argv,
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self.env,
                    start_new_session=True,  # its own process group: killed as one
                )
            except OSError as exc:
                raise CommandError(
                    f"Could not start {argv[0]!r} in {folder}: {exc.strerror or exc}. Check "
                    "the program's path (relative paths start from the cell's folder: give "
                    "an absolute one)."
                ) from None
            try:
                status = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise CommandError(
                    f"{self.__name__} did not finish within {self.timeout:g} s in {folder} and "
                    f"was killed.{_tail(err_path)}"
                ) from None
            except BaseException:  # Ctrl-C, a stop: the program must not outlive the sweep
                _kill(proc)
                raise
        if status != 0:
            how = (
                f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
            )
            raise CommandError(f"{self.__name__} {how} in {folder}.{_tail(err_path)}")
        return status


def as_dataset(values: Mapping[str, Any], dims: Mapping[str, tuple[str, ...]]) -> Any:
    """The outputs read for a cell as one Dataset (what xsweep stores per cell).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.programs.command import as_dataset
    >>> ds = as_dataset({"energy": 1.5, "trace": np.arange(3), "meta": {"ok": True, "n": 2},
    ...                  "tree": {"a": {"b": 1}}}, {"trace": ("t",)})
    >>> {name: v.dims for name, v in ds.data_vars.items()}
    {'energy': (), 'trace': ('t',), 'meta_ok': (), 'meta_n': (), 'tree': ()}
    >>> ds["tree"].item()
    '{"a": {"b": 1}}'
    """
    import pandas as pd
    import xarray as xr

    from ..outputs.frames import pandas_values

    variables: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, xr.Dataset):
            for name, da in value.data_vars.items():
                variables[key if len(value.data_vars) == 1 else f"{key}_{name}"] = da
        elif isinstance(value, xr.DataArray):
            variables[key] = (
                value.rename(None)
                if key not in dims
                else value.rename(dict(zip(value.dims, dims[key])))
            )
        elif isinstance(value, pd.DataFrame):
            table = value.reset_index(drop=True)
            for column in table.columns:
                # as a returned DataFrame is stored: a text column (object or pandas str
                # dtype) becomes a numpy str array, not an object array xsweep refuses
                column_values = pandas_values(table[column], f"column {column!r} of output {key!r}")
                variables[f"{key}_{column}"] = xr.DataArray(
                    column_values, dims=(dims.get(key, (f"{key}_row",))[0],)
                )
        elif isinstance(value, dict) and value and all(_is_flat(v) for v in value.values()):
            for name, item in value.items():  # a JSON object of numbers: a variable per key
                array = np.asarray(item)
                variables[f"{key}_{name}"] = xr.DataArray(
                    array, dims=tuple(f"{key}_{name}_dim_{i}" for i in range(array.ndim))
                )
        elif isinstance(value, (dict, list, tuple)) and not _is_numeric_list(value):
            variables[key] = xr.DataArray(json.dumps(value))
        else:
            array = np.asarray(value)
            names = dims.get(key) or tuple(f"{key}_dim_{i}" for i in range(array.ndim))
            if len(names) != array.ndim:
                raise CommandError(
                    f"dims[{key!r}] names {len(names)} dims, but the output has {array.ndim}: "
                    f"shape {array.shape}."
                )
            variables[key] = xr.DataArray(array, dims=names)
    try:
        return xr.Dataset(variables)
    except ValueError as exc:  # two outputs give one dim two sizes
        raise CommandError(
            f"The outputs {list(values)} do not fit in one Dataset: {exc}. Name their dims "
            "apart with dims={...}."
        ) from None


def _is_flat(value: Any) -> bool:
    """A number, a string, or a list of numbers: what a JSON object's key becomes a
    variable of."""
    if isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, list) and _is_numeric_list(value)


def _is_numeric_list(value: Any) -> bool:
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except (ValueError, TypeError):
        return False


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - STDERR_TAIL))
            text = f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    if not text:
        return " It wrote nothing to stderr."
    cut = "..." if size > STDERR_TAIL else ""
    return f" The end of its stderr:\n{cut}{text}"


def _text(value: Any, what: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or "\0" in value:
        raise XsweepError(f"{what} must be a str (or a path) without NUL, not {value!r:.60}.")
    return value


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise XsweepError(f"timeout must be a number of seconds > 0, or None; got {timeout!r}.")
    return float(timeout)


def _check_relative(path: str, key: str) -> None:
    parts = path.replace("\\", "/").split("/")
    if os.path.isabs(path) or ".." in parts:
        raise XsweepError(
            f"The file of output {key!r} ({path!r}) must be inside the cell's working folder: "
            "a relative path without '..'."
        )


def _fields(templates: list[str]) -> list[str]:
    """The parameter names the templates use, in order of first use (``workdir`` excluded)."""
    names: list[str] = []
    for template in templates:
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise XsweepError(f"The template {template!r} is malformed ({exc}).") from None
        for _, field, _, _ in parsed:
            if field is None:
                continue
            if not field.isidentifier():
                raise XsweepError(
                    f"The template {template!r} uses {{{field}}}: fields are parameter names "
                    "(or {workdir}), without attributes or indexing; write {{ and }} for "
                    "literal braces."
                )
            if field != "workdir" and field not in names:
                names.append(field)
    return names


def _format(template: str, values: Mapping[str, Any], folder: str) -> str:
    """``template`` with the cell's values; refuses values that would change the path."""
    for key, value in values.items():
        text = str(value)
        if "{" + key in template and (
            "/" in text or "\\" in text or "\0" in text or text in (".", "..", "")
        ):
            raise CommandError(
                f"The value {text!r} of {key} cannot go into a path or command line: it holds "
                "a path separator, NUL, or is '.', '..' or empty. Use other values (or map "
                "them to safe names in a wrapper function)."
            )
    return template.format(**values, workdir=folder)


def _inside(folder: str, relative: str, key: str) -> str:
    path = os.path.normpath(os.path.join(folder, relative))
    if os.path.commonpath([path, folder]) != folder:
        raise CommandError(f"The file of output {key!r} ({relative!r}) is outside {folder}.")
    return path


def _anchored(arg: str, root: str) -> str:
    """``arg`` made absolute when it names an existing file relative to ``root``.

    Cells run in their own folders: ``python sim.py`` must still find the ``sim.py`` next to
    the notebook. Arguments with fields, options and files that do not exist stay as they are.
    """
    if not arg or os.path.isabs(arg) or _fields([arg]) or arg.startswith("-"):
        return arg
    path = os.path.join(root, arg)
    return os.path.normpath(path) if os.path.isfile(path) else arg


def _program_name(args: list[str]) -> str:
    """The script's name (``sim`` for ``python sim.py``), else the program's."""
    for arg in args:
        if not _fields([arg]) and os.path.splitext(arg)[1] in (".py", ".sh", ".R", ".jl", ".m"):
            return os.path.splitext(os.path.basename(arg))[0]
    return os.path.splitext(os.path.basename(args[0]))[0] or "command"

