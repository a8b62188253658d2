"""What the wheel and the sdist hold, against the checkout they were built from.

``.ci/wheel`` runs it on the files ``python -m build`` wrote. Every file of the package that
git tracks (modules, and data such as ``py.typed``) must be in both; the wheel holds the
package and nothing else; its metadata names the distribution and the version of
``xsweep/_version.py``, which CHANGELOG.md has an entry for.

Usage: ``python .ci/check_dists.py DIST_FOLDER`` from the root of the checkout.
"""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

PACKAGE = "xsweep"


def fail(message: str) -> None:
    raise SystemExit(f"check_dists: {message}")


def setting(path: Path, key: str) -> str:
    """The first ``key = "value"`` line of a file (no tomllib: any Python)."""
    found = re.search(rf'^{re.escape(key)} = "([^"]+)"', path.read_text(), re.M)
    if found is None:
        fail(f'no {key} = "..." line in {path}')
    return found[1]


def main() -> None:
    dist = Path(sys.argv[1])
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    name = setting(Path("pyproject.toml"), "name")
    requires_python = setting(Path("pyproject.toml"), "requires-python")
    version = setting(Path(f"{PACKAGE}/_version.py"), "__version__")

    tracked = subprocess.run(
        ["git", "ls-files", PACKAGE], capture_output=True, text=True, check=True
    ).stdout.split()
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = set(zf.namelist())
        metadata = email.parser.Parser().parsestr(
            zf.read(f"{name.replace('-', '_')}-{version}.dist-info/METADATA").decode()
        )
    missing = sorted(set(tracked) - in_wheel)
    if missing:
        fail(f"{wheel.name} lacks files of the package: {missing}")
    strays = sorted(
        f for f in in_wheel if not f.startswith(f"{PACKAGE}/") and ".dist-info/" not in f
    )
    if strays:
        fail(f"{wheel.name} holds files outside the package: {strays}")
    with tarfile.open(sdist) as tf:
        root = f"{name.replace('-', '_')}-{version}/"
        in_sdist = {m.name.removeprefix(root) for m in tf.getmembers()}
    missing = sorted({*tracked, "pyproject.toml", "README.md", "LICENSE"} - in_sdist)
    if missing:
        fail(f"{sdist.name} lacks {missing}")

    if metadata["Name"] != name or metadata["Version"] != version:
        fail(f"the wheel is {metadata['Name']} {metadata['Version']}, not {name} {version}")
    if metadata["Requires-Python"] != requires_python:
        fail(f"the wheel requires Python {metadata['Requires-Python']}")
    if not re.search(rf"^## {re.escape(version)}\b", Path("CHANGELOG.md").read_text(), re.M):
        fail(f"CHANGELOG.md has no '## {version}' entry for the version in _version.py")
    print(
        f"check_dists: {wheel.name} and {sdist.name} hold all {len(tracked)} files of "
        f"{PACKAGE}/; {name} {version} has its CHANGELOG entry"
    )


if __name__ == "__main__":
    main()
