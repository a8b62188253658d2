"""Parameter and ParameterSpace: declaration rules, current values, callbacks, coords."""

import numpy as np
import pytest

import xsweep as xs


@pytest.mark.parametrize(
    "values, kind",
    [
        ([1, 2, 3], "i"),
        ([0.1, 0.2], "f"),
        (["x", "y"], "U"),
        ([True, False], "b"),
        (range(4), "i"),
        (np.linspace(0, 1, 3), "f"),
    ],
)
def test_dtype_follows_values(values, kind):
    p = xs.Parameter("p", values=values)
    assert p.values.dtype.kind == kind
    assert p.value == p.values[0].item()
    assert type(p.value) in (int, float, str, bool)


def test_default_and_attrs():
    p = xs.Parameter("length", values=[1, 2, 3], default=2, units="m", description="beam length")
    assert p.value == 2
    assert p.attrs == {"long_name": "length", "units": "m", "description": "beam length"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="1x", values=[1]), "not a valid Python identifier"),
        (dict(name="class", values=[1]), "not a valid Python identifier"),
        (dict(name="a b", values=[1]), "not a valid Python identifier"),
        (dict(name="_x", values=[1]), "underscore"),
        (dict(name="x", values=[]), "empty"),
        (dict(name="x", values=[1, 2, 1]), r"unique.*\[1\]"),
        (dict(name="x", values=[[1, 2], [3, 4]]), "1-D"),
        (dict(name="x", values="abc"), "not a single string"),
        (dict(name="x", values=[1, "a"]), "mix"),
        (dict(name="x", values=[1.0, float("nan")]), "NaN"),
        (dict(name="x", values=[1 + 2j]), "not supported"),
        (dict(name="x", values=[1, 2], default=5), r"Nearest valid values: 1, 2"),
    ],
)
def test_bad_declarations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        xs.Parameter(**kwargs)


def test_value_tolerance_and_nearest():
    p = xs.Parameter("x", values=[0.1, 0.2, 0.3, 0.4])
    p.value = 0.1 + 0.2
    assert p.value == 0.3
    with pytest.raises(ValueError, match=r"0\.25 is not one of its values.*0\.2, 0\.3"):
        p.value = 0.25
    assert p.value == 0.3  # a rejected value leaves the current one


def test_int_parameter_accepts_integral_float_not_others():
    p = xs.Parameter("n", values=[1, 2, 3])
    p.value = 2.0
    assert p.value == 2 and isinstance(p.value, int)
    with pytest.raises(ValueError, match="Nearest valid values: 2, 3"):
        p.value = 2.6


def test_string_and_bool_values():
    s = xs.Parameter("material", values=["steel", "oak"])
    with pytest.raises(ValueError, match="'steal' is not one of its values.*'steel'"):
        s.value = "steal"
    b = xs.Parameter("flag", values=[False, True])
    b.value = True
    assert b.value is True
    with pytest.raises(ValueError):
        b.value = 1  # a bool parameter wants a bool


def test_callbacks_fire_only_on_change_and_propagate():
    p = xs.Parameter("x", values=[1, 2, 3])
    seen = []
    p.register_callback(seen.append)
    p.value = 2
    p.value = 2  # unchanged: no call
    p.value = 3
    assert seen == [2, 3]
    p.remove_callback(seen.append)
    p.value = 1
    assert seen == [2, 3]
    with pytest.raises(ValueError, match="not a registered callback"):
        p.remove_callback(seen.append)

    def boom(v):
        raise RuntimeError(f"callback saw {v}")

    p.register_callback(boom)
    with pytest.raises(RuntimeError, match="callback saw 2"):
        p.value = 2


def test_space_basics(space):
    assert space.dims == ("a", "b")
    assert space.shape == (3, 2)
    assert space.size == 6
    assert space["a"].name == "a"
    assert "b" in space and "c" not in space
    assert [p.name for p in space] == ["a", "b"]
    coords = space.coords
    assert coords["a"].attrs == {"long_name": "a", "units": "m", "description": "a length"}
    assert list(coords["b"].values) == [0.5, 1.5]
    with pytest.raises(KeyError, match=r"No parameter named 'c'.*\['a', 'b'\]"):
        space["c"]


def test_space_rejects_duplicates_and_non_parameters():
    with pytest.raises(ValueError, match="Two parameters are named 'a'"):
        xs.ParameterSpace([xs.Parameter("a", values=[1]), xs.Parameter("a", values=[2])])
    with pytest.raises(ValueError, match="takes Parameter objects"):
        xs.ParameterSpace(["a"])
    with pytest.raises(ValueError, match="at least one"):
        xs.ParameterSpace([])
