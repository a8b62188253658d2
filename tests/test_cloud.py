"""Results files in the cloud: read through VirtualiZarr without a copy, exported to Zarr v3.

Every return kind of the conformance matrix (tests/conformance/kinds.py), written cached and
streamed, with computed, failed, skipped and never-computed cells, must read the same through
a virtual Zarr store and through a Zarr export as through ``xarray.open_dataset``: values,
dtypes, attributes, the status variables and the error messages.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tracemalloc
import uuid
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import xsweep as xs

pytest.importorskip("virtualizarr")
pytest.importorskip("zarr")
pytest.importorskip("dask")

from conformance import kinds as K  # noqa: E402
from conformance.paths import _sweep  # noqa: E402
from obspec_utils.registry import ObjectStoreRegistry  # noqa: E402
from obstore.store import LocalStore, MemoryStore  # noqa: E402
from virtualizarr import open_virtual_dataset  # noqa: E402
from virtualizarr.manifests import ManifestArray, ManifestGroup, ManifestStore  # noqa: E402
from virtualizarr.parsers import HDFParser  # noqa: E402

DATA = Path(__file__).parent / "data"
#: Kinds whose files hold a string coordinate: VirtualiZarr's parser cannot read those
#: (variable-length strings); xs.open_virtual loads them.
STRING_COORDS = {"complex", "dataset"}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        # zarr: its string types have no v3 specification yet
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification")
        warnings.filterwarnings("ignore", message=".*not part .*Zarr format 3")
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(kind, "cached" or "streamed") -> a results file with every cell state."""
    folder = tmp_path_factory.mktemp("kinds")
    out = {}
    for kind in K.KINDS:
        for mode, options in (("cached", {}), ("streamed", {"memory_budget": 64})):
            path = folder / f"{mode}_{kind.name}.nc"
            ps = K.space()
            ps.enable_cache(path, **options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", xs.SweepFailuresWarning)
                _sweep(ps, kind)
            ps.disable_cache()
            out[kind.name, mode] = path
    return out


def plain(path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def assert_same(got: xr.Dataset, path) -> None:
    """``got`` holds what xarray.open_dataset reads: every variable, value, dtype, attribute."""
    want = plain(path)
    assert set(got.variables) == set(want.variables)
    for name in want.variables:
        xr.testing.assert_identical(got[name].load(), want[name])
    assert got.attrs == want.attrs


def read_virtual(vds: xr.Dataset, registry) -> xr.Dataset:
    """A virtual dataset read as a Zarr v3 store of its references (and its loaded variables)."""
    # as the writers of references do (vz.to_icechunk, vz.to_kerchunk): the Variable's dims
    # and attributes are the array's
    arrays = {
        n: ManifestArray(
            dataclasses.replace(
                v.data.metadata,
                dimension_names=v.dims,
                attributes={k: jsonable(a) for k, a in v.attrs.items()},
            ),
            v.data.manifest,
        )
        for n, v in vds.variables.items()
        if isinstance(v.data, ManifestArray)
    }
    store = ManifestStore(
        group=ManifestGroup(arrays=arrays, attributes=vds.attrs), registry=registry
    )
    # chunks=None: numpy, not dask (a distributed client of another test pickles graphs)
    ds = xr.open_zarr(store, consolidated=False, zarr_format=3, chunks=None)
    loaded = {n: v for n, v in vds.variables.items() if n not in arrays}
    return ds.assign_coords(loaded).load()


def jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    return value.tolist() if isinstance(value, np.ndarray) else value


def local_registry() -> ObjectStoreRegistry:
    return ObjectStoreRegistry({"file://": LocalStore()})


# -- VirtualiZarr ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["cached", "streamed"])
@pytest.mark.parametrize("kind", [k.name for k in K.KINDS])
def test_virtualizarr_reads_every_kind_as_open_dataset(files, kind, mode):
    path = files[kind, mode]
    if kind not in STRING_COORDS:  # VirtualiZarr alone, as a user calls it
        vds = open_virtual_dataset(f"file://{path}", registry=local_registry(), parser=HDFParser())
        assert_same(read_virtual(vds, local_registry()), path)
    vds = xs.open_virtual(path)
    assert_same(read_virtual(vds, local_registry()), path)


def test_a_url_in_an_in_memory_object_store(files):
    """The file read from another store than the local disk, by URL (memory://)."""
    path = files["str", "cached"]
    memory = MemoryStore()
    memory.put("r.nc", path.read_bytes())
    registry = ObjectStoreRegistry({"memory://results": memory})
    vds = xs.open_virtual("memory://results/r.nc", registry=registry)
    assert_same(read_virtual(vds, registry), path)


def big_sweep(path, n=12, fail=3, cells=None, **options) -> None:
    """A sweep of 300 x 400 RGB images (360 kB each), one failed, a text output beside."""
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(n)))])

    def shot(a):
        if a == fail:
            raise ValueError(f"no picture at a={a}")
        return {"image": np.full((300, 400, 3), a * 20 % 256, np.uint8), "label": "é" * a}

    ps.enable_cache(path, **options)
    _ = ps.sweep(shot, progress=False, cells=None if cells is None else {"a": cells})
    ps.disable_cache()


def test_big_outputs_are_one_chunk_per_cell_without_a_copy(tmp_path):
    path = tmp_path / "big.nc"
    big_sweep(path)
    vds = xs.open_virtual(path)
    image = vds["image"].data
    assert image.chunks == (1, 300, 400, 3)
    entries = image.manifest.dict()
    assert len(entries) == 12
    # each cell's chunk is a byte range of the file itself: nothing was copied
    first, second = entries["0.0.0.0"], entries["1.0.0.0"]
    assert first["path"] == second["path"] == f"file://{path}"
    assert int(second["offset"]) - int(first["offset"]) == 300 * 400 * 3
    with open(path, "rb") as f:
        f.seek(int(entries["5.0.0.0"]["offset"]))
        assert f.read(10) == bytes([100] * 10)
    assert_same(read_virtual(vds, local_registry()), path)


def test_a_sparse_file_is_chunked_per_cell_for_virtualizarr_as_written(tmp_path):
    """Big outputs of a grid computed below 90 % are chunked a cell per chunk in the file."""
    path = tmp_path / "sparse.nc"
    big_sweep(path, cells=[0, 1, 2, 3, 4, 5])
    vds = open_virtual_dataset(f"file://{path}", registry=local_registry(), parser=HDFParser())
    assert vds["image"].data.chunks == (1, 300, 400, 3)
    assert_same(read_virtual(vds, local_registry()), path)


# -- the text of a file ---------------------------------------------------------------------------
def test_text_is_a_char_array_that_xarray_reads_as_strings(tmp_path):
    path = tmp_path / "big.nc"
    big_sweep(path)
    with netCDF4.Dataset(path) as nc:
        label = nc["label"]
        assert label.dtype == np.dtype("S1") and label.getncattr("_Encoding") == "utf-8"
        assert label.dimensions == ("a", "label_strlen")
        assert len(nc.dimensions["label_strlen"]) == len("é" * 11) * 2  # UTF-8 bytes
        assert nc["shot_messages"].dtype == np.dtype("S1")
    ds = plain(path)
    assert ds["label"].values.tolist() == ["é" * a if a != 3 else "" for a in range(12)]
    assert ds["shot_messages"].values.tolist() == ["ValueError: no picture at a=3"]


def test_long_text_among_short_is_compressed(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(2000)))])

    def note(a):
        return "x" * 5000 if a == 7 else "y"

    path = tmp_path / "notes.nc"
    ps.enable_cache(path)
    ds = ps.sweep(note, progress=False)
    ps.disable_cache()
    assert os.path.getsize(path) < 2000 * 5000 / 20  # 10 MB padded, stored compressed
    assert plain(path)["note"].values.tolist() == ds["note"].values.tolist()
    assert plain(path)["note"].values[7] == "x" * 5000


def test_files_holding_text_as_nc_string_still_read(tmp_path):
    """A file of xsweep 0.1 (tests/data, written before text became char arrays)."""
    path = tmp_path / "old.nc"
    shutil.copy(DATA / "text-as-nc-string.nc", path)
    ps = xs.ParameterSpace(
        [xs.Parameter("material", values=["steel", "oak"]), xs.Parameter("n", values=[1, 2])]
    )

    def beam(material, n):
        raise AssertionError("every cell is in the file: nothing is computed")

    ps.enable_cache(path)
    ds = ps.sweep(beam, on_change="keep", retry_failed=False, progress=False)
    assert ds["label"].values.tolist() == [["steel x1", "steel x2"], ["oak x1", ""]]
    assert ds["weight"].values.tolist()[0] == [1.5, 3.0]
    assert ds.xsweep.failures()["error"].tolist() == ["ValueError: no long oak beams é"]
    before = plain(path)
    assert before["label"].values.tolist() == [["steel x1", "steel x2"], ["oak x1", ""]]

    def area(n):  # another function: the file is written anew, text as char arrays
        return n * n

    _ = ps.sweep(area, progress=False)
    ps.disable_cache()
    with netCDF4.Dataset(path) as nc:
        assert nc["label"].dtype == np.dtype("S1") and nc["beam_messages"].dtype == np.dtype("S1")
        assert nc["material"].dtype is str  # coordinates stay NC_STRING
    after = plain(path)
    for name in before.variables:
        xr.testing.assert_identical(after[name], before[name])


# -- Zarr export ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["cached", "streamed"])
@pytest.mark.parametrize("kind", [k.name for k in K.KINDS])
def test_the_zarr_export_reads_back_as_open_dataset(files, kind, mode, tmp_path):
    path = files[kind, mode]
    xs.export_zarr(path, tmp_path / "r.zarr")
    assert_same(xr.open_zarr(tmp_path / "r.zarr"), path)


def test_export_to_an_fsspec_memory_url_keeps_the_failures(files):
    path = files["ndarray", "streamed"]
    dest = f"memory://exports/{uuid.uuid4().hex}.zarr"
    xs.export_zarr(path, dest)
    z = xr.open_zarr(dest)
    assert_same(z, path)
    assert z.xsweep.failures()["error"].tolist() == ["ValueError: boom at a=1"]
    assert z["k_ndarray_status"].values.tolist() == [1, 2, 0, 1, 0]


def test_export_copies_big_outputs_a_cell_at_a_time(tmp_path):
    path = tmp_path / "big.nc"
    big_sweep(path, n=60)  # 21 MB of images
    big_sweep(tmp_path / "small.nc", n=2)
    xs.export_zarr(tmp_path / "small.nc", tmp_path / "small.zarr")  # imports done: not counted
    tracemalloc.start()
    try:
        xs.export_zarr(path, tmp_path / "big.zarr")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = os.path.getsize(path)
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"
    z = xr.open_zarr(tmp_path / "big.zarr")
    assert z["image"].encoding["chunks"] == (1, 300, 400, 3)
    assert_same(z, path)


def test_export_refuses_an_existing_store_and_says_how_to_replace_it(files, tmp_path):
    path = files["float", "cached"]
    xs.export_zarr(path, tmp_path / "r.zarr")
    with pytest.raises(xs.StoreError, match="already holds a Zarr store.*overwrite=True"):
        xs.export_zarr(path, tmp_path / "r.zarr")
    xs.export_zarr(files["int8", "cached"], tmp_path / "r.zarr", overwrite=True)
    assert "k_int8" in xr.open_zarr(tmp_path / "r.zarr")


def test_export_refuses_a_file_that_is_not_results(tmp_path):
    other = tmp_path / "other.nc"
    xr.Dataset({"v": ("x", [1.0])}).to_netcdf(other)
    with pytest.raises(xs.StoreError, match="not an xsweep results file"):
        xs.export_zarr(other, tmp_path / "r.zarr")
    assert not (tmp_path / "r.zarr").exists()


def test_the_export_command(files, tmp_path):
    path = files["str", "cached"]
    dest = tmp_path / "r.zarr"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    run = [sys.executable, "-m", "xsweep", "export", str(path), "--zarr", str(dest)]
    done = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"exported {path} to {dest}" in done.stdout
    assert_same(xr.open_zarr(dest), path)
    again = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 1
    assert "already holds a Zarr store" in again.stderr and "--overwrite" in again.stderr
    forced = subprocess.run([*run, "--overwrite"], capture_output=True, text=True, env=env)
    assert forced.returncode == 0, forced.stderr
    helped = subprocess.run([*run[:4], "--help"], capture_output=True, text=True, env=env)
    assert "xsweep export results.nc --zarr results.zarr" in helped.stdout
