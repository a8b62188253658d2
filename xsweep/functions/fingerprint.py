"""Fingerprints of a function's code, so that a cache never serves another version's results.

The fingerprint hashes what decides behaviour: the bytecode, its constants and names, nested
functions, default arguments and the immutable values a closure captured (numbers, strings,
tuples, numpy arrays, other functions; lists, dicts and other objects count by type only,
since their contents change as a program runs). Comments, whitespace, line
numbers and docstrings do not count.

It also follows what the function reads from your own code: the module-level globals it
names that hold plain values (numbers, strings, bytes, tuples and frozensets of those, numpy
scalars and arrays), and, recursively, the code of the helper functions and classes it calls
and the attributes it reads from your own modules (``mymod.K``, ``mymod.helper``). Code
from the standard library and installed packages (site-packages, and xsweep itself) is not
followed. What it cannot see, and the ways out, are listed in docs/caching.md ("What the
fingerprint follows"); :func:`version` declares a version by hand.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import os
import site
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

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
    >>> from xsweep.functions.fingerprint import fingerprint
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

    The hash covers ``fn``'s code, defaults and closure, and what it reads from your own
    code: plain module-level globals, the helper functions and classes it calls, the
    attributes it reads from your own modules, recursively. It is the same in every
    process and session for the same code and values.

    Parameters
    ----------
    fn : callable
        A function, a ``functools.partial``, a bound method or a callable object.

    Returns
    -------
    str
        ``"version:<label>"`` when ``fn`` was decorated with :func:`version`, else
        ``"code:"`` and 16 hex digits. A function that reads nothing from your own code
        keeps the fingerprint earlier releases gave it.

    Examples
    --------
    Docstrings, comments and line numbers do not count; the code does:

    >>> from xsweep.functions.fingerprint import fingerprint
    >>> def f(a):
    ...     "Docstrings do not count."
    ...     return a * 2  # nor comments
    >>> def g(a):
    ...     return a * 2
    >>> fingerprint(f) == fingerprint(g)
    True
    >>> fingerprint(lambda a: a * 3) == fingerprint(g)
    False

    So do the globals a function reads, and the helpers it calls:

    >>> K = 1
    >>> def scaled(a):
    ...     return a * K
    >>> before = fingerprint(scaled)
    >>> K = 100
    >>> fingerprint(scaled) == before
    False
    >>> K = 1
    >>> fingerprint(scaled) == before
    True
    """
    label = getattr(fn, "__xsweep_version__", None)
    if label is not None:
        return f"version:{label}"
    return inspect_function(fn).fingerprint


class Reads(NamedTuple):
    """What :func:`inspect_function` found: the fingerprint, and the objects the code reads.

    ``objects`` are the objects (other than plain values, functions, classes and modules)
    the function and the helpers it calls read as globals, and what their closures hold, as
    ``(name, object)`` pairs; ``attributes`` every name that code uses (attribute names
    too), so a caller can tell ``w.value`` from ``w.values``.
    """

    fingerprint: str
    objects: tuple[tuple[str, Any], ...]
    attributes: frozenset[str]


def inspect_function(fn: Callable[..., Any]) -> Reads:
    """``fn``'s code fingerprint (ignoring a :func:`version` label) and what it reads.

    One walk of the function and the helpers it calls in the user's code gives both, so
    that a sweep can refuse a function that reads a parameter it is not swept over (its
    cells would hold whatever value the parameter had) at no extra cost.

    Examples
    --------
    >>> from xsweep.functions.fingerprint import inspect_function
    >>> class Knob:
    ...     value = 3
    >>> knob = Knob()
    >>> def f(a):
    ...     return a * knob.value
    >>> found = inspect_function(f)
    >>> [name for name, obj in found.objects], "value" in found.attributes
    (['knob'], True)
    """
    h = hashlib.sha256()
    _feed(h, fn, set())
    # What the function reads from the user's code goes into a second section, appended
    # only when there is one: a function that reads nothing keeps its earlier fingerprint.
    follower = _Follower()
    try:
        follower.callable(fn)
    except Exception:  # never fail a sweep over an odd object: note that it happened
        follower.feed(b"\0!" + type(fn).__qualname__.encode())
    if follower.fed:
        h.update(b"\0reads\0" + follower.h.digest())
    return Reads(
        "code:" + h.hexdigest()[:16], tuple(follower.objects), frozenset(follower.attributes)
    )


def _feed(h: hashlib._Hash, obj: Any, seen: set[int]) -> None:
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


def _feed_code(h: hashlib._Hash, code: types.CodeType) -> None:
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


def _feed_value(h: hashlib._Hash, value: Any, seen: set[int]) -> None:
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


# -- what a function reads from the user's own code ---------------------------------------------

#: Numpy arrays up to this many bytes are hashed whole; bigger ones by dtype, shape and a
#: sample of ``_ARRAY_SAMPLE`` evenly spaced elements (hashing 1 MB costs 0.3 to 0.6 ms).
_ARRAY_BYTES = 1 << 20
_ARRAY_SAMPLE = 4096

_STORES = frozenset(dis.opmap[op] for op in ("STORE_GLOBAL", "DELETE_GLOBAL") if op in dis.opmap)
_XSWEEP_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the package
_user_files: dict[str, bool] = {}
_user_modules: dict[str, bool] = {}
_installed: tuple[str, ...] | None = None


class _Follower:
    """Feeds what functions read from the user's own code into one hash, in a fixed order.

    ``seen`` holds the ids of the functions, classes and modules already fed in this walk
    (against cycles and repeats); ids only decide membership, they are never hashed.
    """

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.fed = False
        self.seen: set[int] = set()
        self.roots: set[int] = set()  # the swept function itself, its wrapped functions
        self.objects: list[tuple[str, Any]] = []  # other objects read (not hashed by value)
        self.attributes: set[str] = set()

    def feed(self, data: bytes) -> None:
        self.h.update(data)
        self.fed = True

    def callable(self, obj: Any) -> None:
        """Follow the globals of the functions behind a swept callable (not fed: ``_feed``
        hashed their code already)."""
        if isinstance(obj, functools.partial):
            self.callable(obj.func)
        elif isinstance(obj, types.MethodType):
            self.callable(obj.__func__)
        elif isinstance(obj, types.FunctionType):
            if _is_user_function(obj):
                self.roots.add(id(obj))
                self.reads(obj)
        else:  # a callable object: its class's code, when it is the user's
            cls = type(obj)
            call = cls.__dict__.get("__call__")
            if isinstance(call, types.FunctionType) and _is_user_function(call):
                self.roots.add(id(call))
                self.reads(call)
            if _is_user_class(cls):  # the other methods __call__ may call through self
                self.cls(b"__class__", cls)

    def reads(self, func: types.FunctionType) -> None:
        """Feed the globals ``func``'s code names, and follow the functions in its closure."""
        if id(func) in self.seen:
            return
        self.seen.add(id(func))
        loaded, names = _global_names(func.__code__)
        self.attributes.update(names)
        namespace = func.__globals__
        for name in loaded:
            if name in namespace:  # else a builtin
                self.value(name, namespace[name], names)
        for free, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
            try:
                contents = cell.cell_contents
                if callable(contents) and not isinstance(contents, type):
                    self.callable(contents)  # a decorator's wrapped function, say
                else:  # _feed hashed it; the caller may look for objects it knows
                    self.objects.append((free, contents))
            except Exception:  # an empty cell, an object that refuses inspection
                continue

    def value(self, name: str, value: Any, names: tuple[str, ...]) -> None:
        """Feed the global ``name`` bound to ``value``; ``names`` are those the reading code
        names (for attributes of modules)."""
        key = name.encode("utf-8", "surrogatepass")
        try:
            plain = _plain(value)
            label = getattr(type(value), "__xsweep_version__", None) and getattr(
                value, "__xsweep_version__", None
            )
            if isinstance(label, str):  # an object that keys itself (xs.command's programs)
                self.feed(b"\0l" + key + b"=" + label.encode("utf-8", "surrogatepass"))
            elif plain is not None:
                self.feed(b"\0v" + key + b"=" + plain)
            elif isinstance(value, types.ModuleType):
                if _is_user_module(value):
                    self.module(key, value, names)
            elif isinstance(value, type):
                if _is_user_class(value):
                    self.cls(key, value)
            elif isinstance(value, types.FunctionType):
                if _is_user_function(value):
                    self.function(key, value)
            elif isinstance(value, (functools.partial, types.MethodType)):
                func = value.func if isinstance(value, functools.partial) else value.__func__
                if isinstance(func, types.FunctionType) and _is_user_function(func):
                    self.feed(b"\0p" + key)
                    _feed(self.h, value, set())
                    self.reads(func)
            elif isinstance(value, (types.BuiltinFunctionType, np.ufunc)):
                pass  # C functions: the standard library's or an installed package's
            else:
                self.instance(key, value)
        except Exception:
            self.feed(b"\0x" + key + b"=" + type(value).__qualname__.encode())

    def function(self, key: bytes, func: types.FunctionType) -> None:
        if id(func) in self.roots:  # recursion into the swept function: its code is hashed
            return
        self.feed(b"\0f" + key)
        if id(func) in self.seen:
            self.feed(b"<seen>")
            return
        _feed(self.h, func, set())  # its code, defaults and closure
        self.reads(func)

    def cls(self, key: bytes, cls: type) -> None:
        """A class: its name, its methods' code and its plain class-level values, and those
        of the user's base classes."""
        self.feed(b"\0c" + key + b"=" + cls.__qualname__.encode())
        if id(cls) in self.seen:
            self.feed(b"<seen>")
            return
        self.seen.add(id(cls))
        for base in cls.__bases__:
            if base is not object and _is_user_class(base):
                self.cls(b"^", base)
        for attr in sorted(cls.__dict__, key=str):
            member = cls.__dict__[attr]
            attr_key = str(attr).encode("utf-8", "surrogatepass")
            funcs = _functions_of(member)
            if funcs:
                for func in funcs:
                    if _is_user_function(func):  # not functools.total_ordering's, say
                        self.function(b"." + attr_key, func)
            elif not (attr.startswith("__") and attr.endswith("__")):  # not __doc__ & co
                plain = _plain(member)
                if plain is not None:
                    self.feed(b"\0a" + attr_key + b"=" + plain)

    def module(self, key: bytes, module: types.ModuleType, names: tuple[str, ...]) -> None:
        """A module of the user's code: the attributes of it the reading code names."""
        self.feed(b"\0M" + key + b"=" + str(module.__name__).encode())
        if id(module) in self.seen:  # a module reached again: its attributes were fed
            self.feed(b"<seen>")
            return
        self.seen.add(id(module))
        namespace = vars(module)
        for attr in names:
            if attr in namespace:
                self.value(f"{key.decode('utf-8', 'surrogatepass')}.{attr}", namespace[attr], names)
        self.seen.discard(id(module))  # another reader may name other attributes of it

    def instance(self, key: bytes, value: Any) -> None:
        """Any other object counts by its type (its contents change as a program runs); a
        wrapper of a user function (``functools.cache``) follows the function, an instance
        of a user class its class's code; installed callables count for nothing."""
        cls = type(value)
        self.objects.append((key.decode("utf-8", "surrogatepass"), value))
        # Only callables are asked for __wrapped__: other objects' __getattr__ may do work.
        wrapped = getattr(value, "__wrapped__", None) if callable(value) else None
        if isinstance(wrapped, types.FunctionType) and _is_user_function(wrapped):
            self.feed(b"\0t" + key + b"=" + cls.__qualname__.encode())
            self.function(b"__wrapped__", wrapped)
        elif _is_user_class(cls):
            self.feed(b"\0t" + key + b"=" + cls.__qualname__.encode())
            self.cls(b"__class__", cls)
        elif not callable(value):
            self.feed(b"\0t" + key + b"=" + cls.__qualname__.encode())
        # else a function-like object of an installed package (numpy's dispatchers, Cython
        # functions): not followed, like the package's functions.


_LOADS = frozenset(dis.opmap[op] for op in ("LOAD_GLOBAL", "LOAD_NAME") if op in dis.opmap)


@functools.lru_cache(maxsize=4096)  # code objects are immutable: look once
def _global_names(code: types.CodeType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(globals, names)``: the names ``code`` (and its nested code objects) reads as
    globals, and every name it uses (attribute names too, for ``mymod.K``), both sorted.

    Only real global loads count as globals: ``np.full`` names ``full`` as an attribute, and a
    notebook variable called ``full`` must not change the fingerprint. Names it assigns with
    ``global`` are its own state (a call counter), not inputs, and are left out.
    """
    loaded: set[str] = set()
    names: set[str] = set()
    stored: set[str] = set()
    todo = [code]
    while todo:
        c = todo.pop()
        names.update(c.co_names)
        for i in dis.get_instructions(c):
            if i.opcode in _LOADS:
                loaded.add(i.argval)
            elif i.opcode in _STORES:
                stored.add(i.argval)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return tuple(sorted(loaded - stored)), tuple(sorted(names - stored))


def _functions_of(member: Any) -> list[types.FunctionType]:
    """The Python functions a class attribute holds: a method, a static or class method's
    function, a property's getter, setter and deleter, a cached property's function."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, types.FunctionType):
        return [member]
    if isinstance(member, property):
        funcs = (member.fget, member.fset, member.fdel)
        return [f for f in funcs if isinstance(f, types.FunctionType)]
    func = getattr(member, "func", None) if isinstance(member, functools.cached_property) else None
    return [func] if isinstance(func, types.FunctionType) else []


def _plain(value: Any) -> bytes | None:
    """A stable encoding of a plain value, or None when ``value`` is not one."""
    if value is None:
        return b"N"
    if isinstance(value, np.generic):  # before float: np.float64 is a float
        if value.dtype.hasobject:
            return None
        return b"g" + value.dtype.str.encode() + value.tobytes()
    if isinstance(value, np.ndarray):
        return _array(value)
    tag = type(value).__qualname__.encode() + b":"
    if isinstance(value, bool):
        return tag + (b"1" if value else b"0")
    if isinstance(value, int):
        return tag + hex(value).encode()  # hex: no digit limit for huge ints
    if isinstance(value, float):
        return tag + float.hex(value).encode()
    if isinstance(value, complex):
        return tag + f"{value.real.hex()},{value.imag.hex()}".encode()
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return tag + str(len(data)).encode() + b":" + data
    if isinstance(value, bytes):
        return tag + str(len(value)).encode() + b":" + value
    if isinstance(value, (tuple, frozenset)):
        items = []
        for item in value:
            encoded = _plain(item)
            if encoded is None:
                return None
            items.append(hashlib.sha256(encoded).digest())
        if isinstance(value, frozenset):
            items.sort()  # no set iteration order in the hash
        return tag + b"(" + b"".join(items) + b")"
    return None


def _array(a: np.ndarray) -> bytes | None:
    if a.dtype.hasobject:
        return None
    head = f"{a.dtype.str}{a.dtype.descr if a.dtype.fields else ''}{a.shape}".encode()
    if a.nbytes <= _ARRAY_BYTES:
        data = np.ascontiguousarray(a).tobytes()
    else:  # too big to hash at every sweep: dtype, shape and evenly spaced elements
        picks = np.linspace(0, a.size - 1, _ARRAY_SAMPLE).astype(np.intp)
        data = b"sample" + np.ascontiguousarray(a.flat[picks]).tobytes()
    return b"A" + head + hashlib.sha256(data).digest()


def _installed_roots() -> tuple[str, ...]:
    """Folders of the standard library, of installed packages and of xsweep itself."""
    global _installed
    if _installed is None:
        found = [_XSWEEP_DIR, os.path.dirname(os.__file__)]
        try:
            paths = sysconfig.get_paths()
            keys = ("stdlib", "platstdlib", "purelib", "platlib")
            found += [paths[k] for k in keys if k in paths]
        except Exception:
            pass
        for get in ("getsitepackages", "getusersitepackages"):
            try:
                more = getattr(site, get)()
            except Exception:  # absent in some virtualenvs' site module
                continue
            found += [more] if isinstance(more, str) else list(more)
        roots = {os.path.realpath(p) for p in found if isinstance(p, str) and p}
        _installed = tuple(sorted(roots))
    return _installed


def _is_user_file(filename: str) -> bool:
    """Whether code from ``filename`` is the user's: not in the standard library, installed
    packages or xsweep. Code without a file (``<string>`` from exec, ``<stdin>``,
    ``<ipython-input-...>``, ``<doctest ...>``) is the user's, frozen modules are not."""
    known = _user_files.get(filename)
    if known is None:
        if filename.startswith("<"):
            known = not filename.startswith("<frozen")
        else:
            path = os.path.realpath(filename)
            known = not any(path == r or path.startswith(r + os.sep) for r in _installed_roots())
        _user_files[filename] = known
    return known


def _module_decision(name: Any) -> bool | None:
    """Whether the module called ``name`` is user code; None when that cannot be told (no
    such module loaded, or xsweep's own namespace, where doctests define code)."""
    if not isinstance(name, str):
        return None
    if name == "__main__":  # a script, a notebook, a doctest run as __main__
        return True
    if name == "xsweep" or name.startswith("xsweep."):
        return None
    known = _user_modules.get(name)
    if known is None:
        module = sys.modules.get(name)
        if module is None:
            return None
        known = _is_user_module(module)
    return known


def _is_user_module(module: types.ModuleType) -> bool:
    name = getattr(module, "__name__", None)
    known = _user_modules.get(name) if isinstance(name, str) else None
    if known is None:
        if name == "__main__":
            known = True
        else:
            file = getattr(module, "__file__", None)
            if not isinstance(file, str):  # a namespace package: its first folder
                file = next(iter(getattr(module, "__path__", None) or ()), None)
            # No file at all: a builtin or frozen module.
            known = isinstance(file, str) and _is_user_file(file)
        if isinstance(name, str) and sys.modules.get(name) is module:
            _user_modules[name] = known
    return known


def _is_user_function(func: types.FunctionType) -> bool:
    # The module whose namespace the code runs in: __module__ may be copied from another
    # function (functools.wraps).
    known = _module_decision(func.__globals__.get("__name__"))
    return known if known is not None else _is_user_file(func.__code__.co_filename)


def _is_user_class(cls: type) -> bool:
    known = _module_decision(getattr(cls, "__module__", None))
    if known is not None:
        return known
    for member in cls.__dict__.values():  # decide by where its methods were written
        for func in _functions_of(member):
            return _is_user_file(func.__code__.co_filename)
    return False
