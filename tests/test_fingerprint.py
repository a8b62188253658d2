"""The code fingerprint follows what a function reads from the user's own code (issue 12,
item 4): plain module-level globals, helper functions and classes, attributes of the user's
modules. A change raises FunctionChangedError like an edit does; mutable globals, installed
packages and the function's own global state do not count.

The swept functions live in small modules written to ``tmp_path`` and imported, so that the
tests change their globals the way a user does: ``mod.K = 100``, or a new definition
executed into the module. Each sweep uses a new ParameterSpace on the same file, as a new
session does.
"""

import functools
import hashlib
import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xsweep as xs
import xsweep.functions.fingerprint as fp
from xsweep.functions.fingerprint import fingerprint

_names = itertools.count()

MODEL = """
import functools

import numpy as np

K = 1
FACTOR = 10
ARR = np.array([1.0, 2.0, 3.0])
LOG = []
calls = 0


def model(a):
    return a * K


def uses_helper(a):
    return helper(a) + 1


def helper(x):
    return x * 2


def uses_factor(a):
    return scaled(a)


def scaled(x):
    return x * FACTOR


class Shape:
    side = 2

    def area(self, a):
        return a * self.side


def uses_class(a):
    return Shape().area(a)


def uses_array(a):
    return float(a * ARR.sum())


def logged(a):
    LOG.append(a)
    return a * K


def counted(a):
    global calls
    calls += 1
    return a * K


def ping(n):
    return n if n <= 0 else pong(n - 1)


def pong(n):
    return n if n <= 0 else ping(n - 1)


def uses_recursion(a):
    return ping(a) + a


@functools.lru_cache(maxsize=None)
def cached(x):
    return x * K


def uses_cached(a):
    return cached(a)


class Stepper:
    def __call__(self, a):
        return self.step(a)

    def step(self, a):
        return a + 1


class Config:
    def factor(self):
        return 2


CONFIG = Config()


def uses_instance(a):
    return a * CONFIG.factor()


def installed(a):
    return float(np.sum(np.arange(a))) + len(dumps(a))


"""


def write_module(tmp_path, source, prefix="fpmodel"):
    """Write ``source`` as a uniquely named module in ``tmp_path``; its name."""
    name = f"{prefix}_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


@pytest.fixture
def load(tmp_path, monkeypatch):
    """Import modules written to tmp_path; forget them afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = []

    def load(source, prefix="fpmodel"):
        name = write_module(tmp_path, source, prefix)
        importlib.invalidate_caches()
        loaded.append(name)
        return importlib.import_module(name)

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


@pytest.fixture
def mod(load):
    return load(MODEL)


def sweep(path, fn, **options):
    """Sweep ``fn`` over a = 1, 2, 3 in a new space on the cache file ``path``."""
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    ps.enable_cache(path)
    ds = ps.sweep(fn, progress=False, **options)
    return ds[fn.__name__].values.tolist()


def assert_change_is_noticed(path, fn, change, before, after):
    """Sweep ``fn`` (giving ``before``), ``change()``, sweep again: FunctionChangedError, whose
    way out ``force_recompute=True`` gives ``after``; the new results are then reused."""
    assert sweep(path, fn) == before
    change()
    with pytest.raises(xs.FunctionChangedError) as caught:
        sweep(path, fn)
    assert "force_recompute=True" in str(caught.value)
    assert sweep(path, fn, force_recompute=True) == after
    assert sweep(path, fn) == after  # the file now holds the new version


def code_only(fn):
    """The fingerprint of ``fn``'s own code, defaults and closure: what earlier releases
    hashed, before the fingerprint followed what a function reads."""
    h = hashlib.sha256()
    fp._feed(h, fn, set())
    return "code:" + h.hexdigest()[:16]


# -- what is followed: a change raises, the way out works ------------------------------------


def test_a_changed_global_raises(mod, tmp_path):
    def change():
        mod.K = 100

    assert_change_is_noticed(tmp_path / "r.nc", mod.model, change, [1, 2, 3], [100, 200, 300])


def test_a_global_changed_back_raises_again(mod, tmp_path):
    path = tmp_path / "r.nc"
    assert sweep(path, mod.model) == [1, 2, 3]
    mod.K = 5
    assert sweep(path, mod.model, force_recompute=True) == [5, 10, 15]
    mod.K = 1
    with pytest.raises(xs.FunctionChangedError):
        sweep(path, mod.model)
    assert sweep(path, mod.model, on_change="keep") == [5, 10, 15]  # kept on purpose


def test_a_changed_helper_raises(mod, tmp_path):
    def change():
        exec("def helper(x):\n    return x * 3\n", mod.__dict__)

    assert_change_is_noticed(tmp_path / "r.nc", mod.uses_helper, change, [3, 5, 7], [4, 7, 10])


def test_a_changed_global_of_a_helper_raises(mod, tmp_path):
    def change():
        mod.FACTOR = 20

    assert_change_is_noticed(tmp_path / "r.nc", mod.uses_factor, change, [10, 20, 30], [20, 40, 60])


def test_a_changed_method_raises(mod, tmp_path):
    source = textwrap.dedent(
        """
        class Shape:
            side = 2

            def area(self, a):
                return a * self.side + 1
        """
    )

    def change():
        exec(source, mod.__dict__)

    assert_change_is_noticed(tmp_path / "r.nc", mod.uses_class, change, [2, 4, 6], [3, 5, 7])


def test_a_changed_class_attribute_raises(mod, tmp_path):
    def change():
        mod.Shape.side = 3

    assert_change_is_noticed(tmp_path / "r.nc", mod.uses_class, change, [2, 4, 6], [3, 6, 9])


def test_a_changed_attribute_of_a_user_module_raises(load, tmp_path):
    conf = load("K = 1\n\ndef offset(x):\n    return x + 1\n", prefix="fpconf")
    user = load(
        f"""
        import {conf.__name__} as conf

        def model(a):
            return conf.offset(a * conf.K)
        """
    )

    def change():
        conf.K = 10

    assert_change_is_noticed(tmp_path / "r.nc", user.model, change, [2, 3, 4], [11, 21, 31])

    def change_helper():
        exec("def offset(x):\n    return x + 2\n", conf.__dict__)

    assert_change_is_noticed(
        tmp_path / "s.nc", user.model, change_helper, [11, 21, 31], [12, 22, 32]
    )


def test_a_callable_objects_helper_method_counts(mod, tmp_path):
    stepper = mod.Stepper()
    stepper.__name__ = stepper.__qualname__ = "stepper"

    def change():
        exec("def step(self, a):\n    return a + 2\n", mod.__dict__)
        mod.Stepper.step = mod.step

    assert_change_is_noticed(tmp_path / "r.nc", stepper, change, [2, 3, 4], [3, 4, 5])


def test_an_instance_of_a_user_class_counts_by_its_classs_code(mod, tmp_path):
    source = "class Config:\n    def factor(self):\n        return 3\n\nCONFIG = Config()\n"

    def change():
        exec(source, mod.__dict__)

    assert_change_is_noticed(tmp_path / "r.nc", mod.uses_instance, change, [2, 4, 6], [3, 6, 9])


def test_a_small_numpy_array_changed_in_place_raises(mod, tmp_path):
    def change():
        mod.ARR[0] = 4.0

    assert_change_is_noticed(
        tmp_path / "r.nc", mod.uses_array, change, [6.0, 12.0, 18.0], [9.0, 18.0, 27.0]
    )


def test_a_big_array_counts_by_dtype_shape_and_a_sample(mod):
    mod.ARR = np.zeros(1_000_000)  # 8 MB: over the bound, sampled
    before = fingerprint(mod.uses_array)
    mod.ARR[0] = 1.0  # the first element is always sampled
    assert fingerprint(mod.uses_array) != before
    mod.ARR = np.zeros(1_000_000, dtype=np.float32)
    assert fingerprint(mod.uses_array) != before


def test_a_helper_behind_a_cache_decorator_is_followed(mod):
    before = fingerprint(mod.uses_cached)
    mod.K = 2
    assert fingerprint(mod.uses_cached) != before


def test_the_same_space_notices_a_changed_global(mod, tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(mod.model, progress=False)
    assert ps.is_computed(mod.model, a=2)
    mod.K = 100
    with pytest.raises(xs.FunctionChangedError):
        ps.sweep(mod.model, progress=False)
    assert not ps.is_computed(mod.model, a=2)  # agrees with run_process
    with pytest.raises(xs.FunctionChangedError):
        ps.run_process(mod.model, a=2)  # never a stale cell either
    ds = ps.sweep(mod.model, force_recompute=True, progress=False)  # the way out
    assert ps.run_process(mod.model, a=2) == ds["model"].sel(a=2).item()


# -- what is not followed ---------------------------------------------------------------------


def test_a_mutable_global_counts_by_type_only(mod, tmp_path):
    path = tmp_path / "r.nc"
    assert sweep(path, mod.logged) == [1, 2, 3]
    assert mod.LOG == [1, 2, 3]
    assert sweep(path, mod.logged) == [1, 2, 3]  # LOG has grown: no error, nothing computed
    assert mod.LOG == [1, 2, 3]
    mod.K = 2  # while a plain global the same function reads does count
    with pytest.raises(xs.FunctionChangedError):
        sweep(path, mod.logged)


def test_the_functions_own_global_state_does_not_count(mod, tmp_path):
    path = tmp_path / "r.nc"
    assert sweep(path, mod.counted) == [1, 2, 3]
    assert mod.calls == 3
    assert sweep(path, mod.counted) == [1, 2, 3]  # `global calls` is state, not an input
    mod.K = 2
    with pytest.raises(xs.FunctionChangedError):
        sweep(path, mod.counted)


def test_installed_packages_are_not_followed(mod):
    # numpy's and the standard library's functions (np.sum, json.dumps) add nothing: the
    # fingerprint is that of the function's own code, as before.
    assert fingerprint(mod.installed) == code_only(mod.installed)

    def uses_xsweep(a):  # nor is xsweep itself
        return xs.Parameter("a", values=[a]).name + json.dumps(a)

    assert fingerprint(uses_xsweep) == code_only(uses_xsweep)
    assert fingerprint(mod.model) != code_only(mod.model)  # a user global does count


def test_recursion_between_helpers_terminates(mod):
    before = fingerprint(mod.uses_recursion)
    assert fingerprint(mod.uses_recursion) == before
    exec("def pong(n):\n    return n if n <= 1 else ping(n - 1)\n", mod.__dict__)
    assert fingerprint(mod.uses_recursion) != before


def test_odd_globals_never_raise(load):
    odd = load(
        """
        class Hostile:
            def __getattribute__(self, name):
                raise RuntimeError("no attribute for you")

        THING = Hostile()

        def model(a):
            return a if THING else -a
        """
    )
    before = fingerprint(odd.model)
    assert fingerprint(odd.model) == before
    odd.THING = 1
    assert fingerprint(odd.model) != before


# -- stability ----------------------------------------------------------------------------------


def test_the_fingerprint_is_the_same_in_a_fresh_process(load, tmp_path):
    conf = load("K = 1\nNAMES = frozenset({'alpha', 'beta', 'gamma', 'delta'})\n", "fpconf")
    user = load(
        f"""
        import numpy as np
        import {conf.__name__} as conf

        ARR = np.linspace(0.0, 1.0, 5)
        PAIR = (1, "two", 3.0, b"four", None, (True, 2j))
        LOG = []

        class Shape:
            side = 2.5

            @property
            def twice(self):
                return self.side * 2

            @staticmethod
            def unit(x):
                return x / conf.K

        def helper(x):
            LOG.append(x)
            return Shape.unit(x) * len(conf.NAMES)

        def model(a):
            return helper(a) + ARR.sum() + len(PAIR) + Shape().twice
        """
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from xsweep.functions.fingerprint import fingerprint
        import {conf.__name__} as conf, {user.__name__} as user
        print(fingerprint(user.model))
        conf.K = 2
        print(fingerprint(user.model))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # another string hash than ours
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    here = fingerprint(user.model)
    conf.K = 2
    assert out == [here, fingerprint(user.model)]
    assert out[0] != out[1]


def test_functions_that_read_nothing_keep_the_previous_releases_fingerprint(mod):
    def reference(a, b=2.5, *, scale=3):
        """Docstring."""
        total = [a * b + i for i in range(scale)]
        return np.sum(total) / len(total)

    # It reads only builtins and numpy: nothing is followed.
    assert fingerprint(reference) == code_only(reference)
    if sys.version_info[:2] == (3, 11):  # bytecode differs between Python versions
        # xsweep 0.x (before globals were followed) gave it this fingerprint:
        assert fingerprint(reference) == "code:200cdcfd132b15f1"
    # A function that reads a user global gets a new one.
    assert fingerprint(mod.model) != code_only(mod.model)


def test_a_declared_version_replaces_what_the_function_reads(mod, tmp_path):
    path = tmp_path / "r.nc"
    assert sweep(path, mod.model, version="1") == [1, 2, 3]
    mod.K = 100
    assert sweep(path, mod.model, version="1") == [1, 2, 3]  # the label says: unchanged
    assert sweep(tmp_path / "s.nc", mod.model) == [100, 200, 300]
    mod.K = 1
    with pytest.raises(xs.FunctionChangedError):  # without a label, the global counts
        sweep(tmp_path / "s.nc", mod.model)


def test_a_typical_function_is_fingerprinted_the_same_every_time(mod):
    # Its cost (tens of microseconds) is measured where timings belong, not here: a loaded
    # CI machine must not fail a test. What a test can check: the result is stable.
    assert len({fingerprint(mod.uses_class) for _ in range(5)}) == 1
    assert fingerprint(mod.uses_class) != code_only(mod.uses_class)


def test_partial_and_decorated_functions_follow_the_wrapped_code(mod):
    part = functools.partial(mod.model)

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    wrapped = deco(mod.model)
    before = fingerprint(part), fingerprint(wrapped)
    mod.K = 3
    after = fingerprint(part), fingerprint(wrapped)
    assert before[0] != after[0] and before[1] != after[1]


def test_attribute_names_are_not_globals(tmp_path):
    """``np.full`` names ``full`` as an attribute: a notebook variable ``full`` (the loaded
    results, say) must not make cached results count as another version's."""
    import types

    import numpy as np

    from xsweep.functions.fingerprint import fingerprint

    module = types.ModuleType("user_notebook")
    module.__file__ = str(tmp_path / "user_notebook.py")
    exec(
        "import numpy as np\nK = 2\n"
        "def img(a, b):\n    return np.full((2, 2), a * K + b)\n",
        module.__dict__,
    )
    before = fingerprint(module.img)
    module.full = np.zeros(3)  # what `full = ds["img"].values` does in a notebook
    assert fingerprint(module.img) == before
    module.K = 3  # a real global read still counts
    assert fingerprint(module.img) != before
