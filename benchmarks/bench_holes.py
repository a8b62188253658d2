"""What marking the cells without a value of a ``uint8`` image output costs (issue 21).

An image that uses all 256 levels leaves no value free for a ``_FillValue``. Two ways:

* ``raw``: keep the bytes, no ``_FillValue``; ``<fn>_status`` says which cells are real
  (what xsweep does);
* ``widen``: store ``int16`` with ``_FillValue: -1`` while cells are missing.

Also measured: choosing a free value for images that leave one (one scan of the computed
cells), the sweep's Dataset holding the images as float32 with NaN (while holes exist),
and the same sweep through xsweep with and without failed cells.

Run: ``python benchmarks/bench_holes.py [n_images]`` (default 200 images of 300x400x3).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings

import numpy as np

perf = time.perf_counter


def images(n: int, full_range: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256 if full_range else 200, size=(n, 300, 400, 3), dtype=np.uint8)
    return data


def write(path: str, data: np.ndarray, dtype, fill) -> float:
    import netCDF4

    t = perf()
    with netCDF4.Dataset(path, "w") as nc:
        for i, n in enumerate(data.shape):
            nc.createDimension(f"d{i}", n)
        nc.set_fill_off()
        var = nc.createVariable(
            "img", dtype, tuple(f"d{i}" for i in range(data.ndim)), fill_value=fill, contiguous=True
        )
        var[...] = data
    os.sync()
    return perf() - t


def main(n: int = 200) -> None:
    from xsweep.outputs import VariableSpec
    from xsweep.store.holes import choose_fill, hole_mask, masked

    folder = tempfile.mkdtemp()
    data = images(n, full_range=True)
    status = np.ones(n, dtype=np.int8)
    status[::10] = 2  # 10 % failed
    var = VariableSpec("img", np.dtype(np.uint8), data.shape[1:], ("y", "x", "rgb"))
    mask = hole_mask(status, (n,), var)
    mb = data.nbytes / 2**20
    print(f"{n} uint8 images, {mb:.0f} MiB, {int((status != 1).sum())} cells without a value")

    t_raw = write(os.path.join(folder, "raw.nc"), data, np.uint8, False)
    t = perf()
    wide = np.where(mask, np.int16(-1), data.astype(np.int16))
    t_convert = perf() - t
    t_wide = write(os.path.join(folder, "wide.nc"), wide, np.int16, np.int16(-1))
    size_raw = os.path.getsize(os.path.join(folder, "raw.nc")) / 2**20
    size_wide = os.path.getsize(os.path.join(folder, "wide.nc")) / 2**20
    print(f"raw bytes + status : {t_raw:6.2f} s to write, {size_raw:7.1f} MiB")
    print(
        f"widened to int16   : {t_wide + t_convert:6.2f} s to write ({t_convert:.2f} s to "
        f"convert), {size_wide:7.1f} MiB"
    )

    t = perf()
    fill = choose_fill(data, mask)
    print(f"choose a fill, every level used: {perf() - t:6.2f} s (found {fill})")
    spare = images(n, full_range=False)
    t = perf()
    fill = choose_fill(spare, mask)
    print(f"choose a fill, levels to spare : {perf() - t:6.2f} s (found {fill})")
    t = perf()
    floats = masked(data, mask)
    print(f"float32 with NaN in the Dataset: {perf() - t:6.2f} s, {floats.nbytes / 2**20:.0f} MiB")
    del floats, wide

    import xsweep as xs

    for failing in (False, True):
        ps = xs.ParameterSpace([xs.Parameter("i", values=range(n))])
        ps.enable_cache(os.path.join(folder, f"sweep-{failing}.nc"))

        def picture(i, failing=failing):
            if failing and i % 10 == 0:
                raise ValueError("no picture")
            return data[i]

        t = perf()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = ps.sweep(picture, progress=False)
        took = perf() - t
        print(
            f"xsweep sweep, {'10 % failed' if failing else 'complete   '}: {took:6.2f} s "
            f"({ds['picture'].dtype})"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
