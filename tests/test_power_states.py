"""States a power cut left behind under earlier versions, and the ways out of them.

The power-loss trials themselves (LazyFS) are in tests/powerloss/.
"""

from __future__ import annotations

import os
import shutil

import pytest
import xarray as xr

import xsweep as xs


def square(n):
    return n * n


def space():
    return xs.ParameterSpace([xs.Parameter("n", values=range(6))])


def test_an_empty_file_left_by_a_power_cut_is_replaced_with_a_warning(tmp_path):
    # xsweep 0.1 renamed a new file into place before its bytes were on disk: a power cut
    # then left a 0-byte file (and an empty journal) under the name.
    path = tmp_path / "r.nc"
    path.write_bytes(b"")
    (tmp_path / "r.nc.journal").write_bytes(b"")
    ps = space()
    with pytest.warns(xs.DamagedSideFileWarning, match=r"is empty \(0 bytes\).*replaces it"):
        ps.enable_cache(path)
    assert list(ps.sweep(square)["square"].values) == [0, 1, 4, 9, 16, 25]
    ps.disable_cache()
    with xr.open_dataset(path) as ds:
        assert list(ds["square"].values) == [0, 1, 4, 9, 16, 25]
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]


def test_an_unreadable_file_next_to_a_journal_says_the_way_out_and_it_works(tmp_path):
    path = tmp_path / "r.nc"
    ps = space()
    ps.enable_cache(path)
    ps.sweep(square)
    ps.disable_cache()
    whole = path.read_bytes()
    path.write_bytes(whole[:300])  # torn: not something xsweep ever leaves now
    (tmp_path / "r.nc.journal").write_bytes(b"XSWEEPJ1" + b"0" * 32 + b"\n")
    with pytest.raises(xs.StoreError, match="move the file away") as info:
        space().enable_cache(path)
    assert str(path) in str(info.value)
    shutil.move(path, tmp_path / "r.nc.broken")  # the way out the message gives
    ps = space()
    ps.enable_cache(path)
    assert list(ps.sweep(square)["square"].values) == [0, 1, 4, 9, 16, 25]
    ps.disable_cache()
    assert sorted(os.listdir(tmp_path)) == ["r.nc", "r.nc.broken"]
