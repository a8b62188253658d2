"""Fingerprints of a function's code, so that a cache never serves another version's results.

The fingerprint hashes what decides behaviour: the bytecode, its constants and names, nested
functions, default arguments and the immutable values a closure captured (numbers, strings,
tuples, numpy arrays, other functions; lists, dicts and other objects count by type only,
since their contents change as a program runs). Comments, whitespace, line
numbers and docstrings do not count. Functions it calls are not followed: when a helper
changes, declare a version with :func:`version`.
"""

from __future__ import annotations

import functools
import hashlib
import types
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def version(label: str) -> Callable[[F], F]:
    """Declare a function's version yourself; it replaces the code fingerprint.

    Results cached for ``@xs.version("1")`` stay valid through any edit until you change
    the label: use it when the code fingerprint is too strict (you refactored) or too lax
    (a helper the function calls changed).

    Examples
    --------
    >>> import xsweep as xs
    >>> @xs.version("2024-06 calibration")
    ... def model(a):
    ...     return a + 1
    >>> from xsweep.fingerprint import fingerprint
    >>> fingerprint(model)
    'version:2024-06 calibration'
    """
    if not isinstance(label, str) or not label:
        raise ValueError(f"version() takes a non-empty string label, not {label!r}.")

    def mark(fn: F) -> F:
        fn.__xsweep_version__ = label  # type: ignore[attr-defined]
        return fn

    return mark


def fingerprint(fn: Callable[..., Any]) -> str:
    """A short stable id of ``fn``'s behaviour: ``"version:<label>"`` or ``"code:<hash>"``.

    Examples
    --------
    >>> from xsweep.fingerprint import fingerprint
    >>> def f(a):
    ...     "Docstrings do not count."
    ...     return a * 2  # nor comments
    >>> def g(a):
    ...     return a * 2
    >>> fingerprint(f) == fingerprint(g)
    True
    >>> fingerprint(lambda a: a * 3) == fingerprint(g)
    False
    """
    label = getattr(fn, "__xsweep_version__", None)
    if label is not None:
        return f"version:{label}"
    h = hashlib.sha256()
    _feed(h, fn, set())
    return "code:" + h.hexdigest()[:16]


def _feed(h, obj: Any, seen: set[int]) -> None:
    if id(obj) in seen:
        h.update(b"<cycle>")
        return
    seen.add(id(obj))
    if isinstance(obj, functools.partial):
        h.update(b"partial")
        _feed(h, obj.func, seen)
        _feed_value(h, obj.args, seen)
        _feed_value(h, sorted(obj.keywords.items()), seen)
        return
    if isinstance(obj, types.MethodType):
        _feed(h, obj.__func__, seen)
        return
    code = getattr(obj, "__code__", None)
    if code is None:  # a callable object: its class's __call__ and its attributes' kinds
        h.update(type(obj).__qualname__.encode())
        call = type(obj).__dict__.get("__call__")
        if call is not None and hasattr(call, "__code__"):
            _feed(h, call, seen)
        return
    _feed_code(h, code)
    _feed_value(h, getattr(obj, "__defaults__", None), seen)
    _feed_value(h, sorted((getattr(obj, "__kwdefaults__", None) or {}).items()), seen)
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            contents = None
        _feed_value(h, contents, seen)


def _feed_code(h, code: types.CodeType) -> None:
    h.update(code.co_code)
    consts = list(code.co_consts)
    if consts and (consts[0] is None or isinstance(consts[0], str)):
        consts = consts[1:]  # the docstring slot: the docstring, or None when there is none
    for const in consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        else:
            h.update(repr(const).encode())
    h.update(repr(code.co_names).encode())
    h.update(repr(code.co_varnames).encode())
    h.update(repr(code.co_freevars).encode())


def _feed_value(h, value: Any, seen: set[int]) -> None:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        h.update(repr(value).encode())
    elif isinstance(value, (tuple, frozenset)):
        h.update(b"(")
        for item in sorted(value, key=repr) if isinstance(value, frozenset) else value:
            _feed_value(h, item, seen)
        h.update(b")")
    elif isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        data = value.tolist() if value.dtype == object else None
        h.update(repr(data).encode() if data is not None else np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        h.update(repr(value).encode())
    elif callable(value):
        _feed(h, value, seen)
    else:
        # Mutable containers and other objects count by their type only: their contents
        # change as the program runs (a call log, a cache) without changing the function.
        h.update(type(value).__qualname__.encode())
