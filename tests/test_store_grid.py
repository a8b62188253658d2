"""The store's grid: union of a file's and a space's values, positions, re-gridding."""

from __future__ import annotations

import numpy as np
import pytest

import xsweep as xs
from xsweep.errors import StoreMismatchError
from xsweep.store import Grid


def grid(**axes) -> Grid:
    return Grid({name: (np.asarray(values), {}) for name, values in axes.items()})


def test_shape_and_flat_index_follow_c_order():
    g = grid(a=[1, 2, 3], b=[0.5, 1.5])
    assert g.shape(("a", "b")) == (3, 2)
    assert g.shape(("b", "a")) == (2, 3)
    assert [g.flat_index(("a", "b"), {"a": i, "b": j}) for i in range(3) for j in range(2)] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    assert g.flat_index(("b", "a"), {"a": 2, "b": 1}) == 5
    assert g.label(("a", "b"), (2, 1)) == {"a": 3, "b": 1.5}


def test_a_space_inside_a_bigger_file_grid_is_addressed_by_its_own_indices():
    file_grid = grid(a=[1, 2, 3, 4])
    merged, moved = file_grid.with_space(grid(a=[2, 4]), "f.nc")
    assert moved == {}  # the space adds nothing: the file's cells stay where they are
    assert merged["a"].values.tolist() == [1, 2, 3, 4]
    assert merged.positions["a"].tolist() == [1, 3]
    assert not merged.is_space("a")
    assert merged.flat_index(("a",), {"a": 1}) == 3  # the space's 4 is the file's fourth value


def test_sorted_grids_stay_sorted_and_the_files_cells_move_to_their_new_places():
    merged, moved = grid(a=[1, 3, 5]).with_space(grid(a=[2, 3, 6]), "f.nc")
    assert merged["a"].values.tolist() == [1, 2, 3, 5, 6]
    assert moved["a"].tolist() == [0, 2, 3]  # where 1, 3 and 5 went
    assert merged.positions["a"].tolist() == [1, 2, 4]


def test_unsorted_grids_get_new_values_at_the_end():
    merged, moved = grid(m=["steel", "oak"]).with_space(grid(m=["pine", "oak"]), "f.nc")
    assert merged["m"].values.tolist() == ["steel", "oak", "pine"]
    assert moved["m"].tolist() == [0, 1]  # appending moves nothing
    assert merged.positions["m"].tolist() == [2, 1]


def test_the_spaces_attributes_win_and_the_files_own_are_kept():
    file_grid = Grid({"a": (np.array([1, 2]), {"units": "mm", "note": "from the file"})})
    space = Grid({"a": (np.array([1, 2]), {"units": "m"})})
    merged, _ = file_grid.with_space(space, "f.nc")
    assert merged["a"].attrs == {"units": "m", "note": "from the file"}
    assert merged.is_space("a")


def test_parameters_of_another_kind_are_refused_with_the_way_out():
    with pytest.raises(StoreMismatchError, match="another kind.*Nothing was changed") as info:
        grid(a=[1, 2]).with_space(grid(a=["x", "y"]), "f.nc")
    assert "rename the parameter" in str(info.value)


def test_ints_and_floats_unite_as_floats():
    merged, _ = grid(a=[1, 2]).with_space(grid(a=[1.5]), "f.nc")
    assert merged["a"].values.dtype.kind == "f"
    assert merged["a"].values.tolist() == [1.0, 1.5, 2.0]


def test_a_grown_file_keeps_every_cell_at_its_value(tmp_path):
    """Re-gridding through the public API: new values in the middle of two sorted axes."""
    path = str(tmp_path / "r.nc")
    calls = []

    def f(a, b):
        calls.append((a, b))
        return a * 100 + b

    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 3]), xs.Parameter("b", values=[10, 30])])
    ps.enable_cache(path)
    ps.sweep(f)
    ps.disable_cache()
    calls.clear()
    grown = xs.ParameterSpace(
        [xs.Parameter("a", values=[1, 2, 3]), xs.Parameter("b", values=[10, 20, 30])]
    )
    grown.enable_cache(path)
    ds = grown.sweep(f)
    assert sorted(calls) == [(1, 20), (2, 10), (2, 20), (2, 30), (3, 20)]
    assert ds["f"].values.tolist() == [[110, 120, 130], [210, 220, 230], [310, 320, 330]]


def test_a_string_parameter_grows_with_shorter_values(tmp_path):
    """Growing ["steel", "oak"] with "pine" once crashed (the union took the space's width)."""
    path = str(tmp_path / "r.nc")

    def grade(material):
        return len(material)

    ps = xs.ParameterSpace([xs.Parameter("material", values=["steel", "oak"])])
    ps.enable_cache(path)
    ps.sweep(grade)
    ps.disable_cache()
    other = xs.ParameterSpace([xs.Parameter("material", values=["pine", "oak"])])
    other.enable_cache(path)
    ds = other.sweep(grade)
    assert ds["grade"].sel(material="pine").item() == 4
    other.disable_cache()
    import xarray as xr

    with xr.open_dataset(path) as shared:
        assert shared["material"].values.tolist() == ["steel", "oak", "pine"]
        assert shared["grade"].values.tolist() == [5, 3, 4]
