"""The ``xsweep`` command line as a new user meets it: run as a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

import xsweep as xs


def xsweep(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xsweep", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_the_demo_run_twice_says_its_cells_were_cached_and_points_at_info(tmp_path):
    first = xsweep("demo", "--dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "computed 36 cells" in first.stdout
    path = tmp_path / "beam.nc"
    assert f"xsweep info {path}" in first.stdout
    second = xsweep("demo", "--dir", str(tmp_path))
    assert "found all 36 cells cached" in second.stdout
    # The way out it points at works.
    info = xsweep("info", str(path))
    assert info.returncode == 0 and "36 computed" in info.stdout


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda p: p.mkdir(), "is a folder"),
        (
            lambda p: p.write_text("length,width\n1,2\n"),
            "is a text file (it starts with 'length,width')",
        ),
        (lambda p: p.write_bytes(b""), "is an empty file"),
        (lambda p: p.write_bytes(bytes(range(256))), "is a binary file that is not NetCDF"),
    ],
)
def test_info_on_something_else_says_what_it_is(tmp_path, make, says):
    path = tmp_path / "results.nc"
    make(path)
    out = xsweep("info", str(path))
    assert out.returncode == 1 and out.stdout == ""
    assert says in out.stderr and "Traceback" not in out.stderr
    assert "not a results file" in out.stderr


def test_info_shortens_long_value_lists_without_quoting_the_ellipsis(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(20)))])
    ps.enable_cache(str(path))
    ps.sweep(lambda a: a)
    ps.disable_cache()
    out = xsweep("info", str(path))
    assert "a: 20 values [0, 1, 2, ..., 18, 19]" in out.stdout


def test_info_piped_into_head_ends_quietly(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(3)))])
    ps.enable_cache(str(path))
    ps.sweep(lambda a: a)
    ps.disable_cache()
    out = subprocess.run(
        f"{sys.executable} -m xsweep info {path} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.stdout.strip() == str(path)
    assert "error" not in out.stderr


def test_errors_raise_note_counts_the_cells_kept():
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])

    def fails_at_first(a):
        raise ValueError("no")

    def fails_at_second(a):
        if a == 2:
            raise ValueError("no")
        return a

    with pytest.raises(ValueError) as info:
        ps.sweep(fails_at_first, errors="raise")
    if sys.version_info >= (3, 11):  # exception notes (PEP 678): Python 3.11+
        assert "no cell was computed before it" in info.value.__notes__[0]
    with pytest.raises(ValueError) as info:
        ps.sweep(fails_at_second, errors="raise")
    if sys.version_info >= (3, 11):
        assert "the 1 cell computed before it is kept" in info.value.__notes__[0]


def tripled(a):
    return 3 * a


def test_info_counts_cells_only_in_the_journal_and_publish_makes_the_file_current(tmp_path):
    import xarray as xr

    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    ps.enable_cache(str(path))
    ps.sweep(tripled, cells={"a": [1]}, progress=False)
    assert ps.run_process(tripled, a=2) == 6 and ps.run_process(tripled, a=3) == 9
    info = xsweep("info", str(path))
    assert "2 computed cells are so far only in the journal" in info.stdout
    assert f"xsweep publish {path}" in info.stdout  # the way out it names works:
    with xr.open_dataset(path) as shared:
        assert int((shared["tripled_status"] == 1).sum()) == 1  # a colleague sees one cell
    out = xsweep("publish", str(path))
    assert out.returncode == 0, out.stderr
    assert "now holds the 2 cells that only the journal held" in out.stdout
    with xr.open_dataset(path) as shared:
        assert shared["tripled"].values.tolist() == [3, 6, 9]
    assert "only in the journal" not in xsweep("info", str(path)).stdout
    assert "was current" in xsweep("publish", str(path)).stdout
    # The space goes on with the published file.
    assert ps.run_process(tripled, a=3) == 9
    ps.run_process(tripled, a=1, force_recompute=True)
    ps.publish()
    assert "only in the journal" not in xsweep("info", str(path)).stdout
