"""The widget manager's JavaScript, shipped with the site instead of loaded from a CDN.

Pages with widgets load RequireJS and ``@jupyter-widgets/html-manager``'s ``embed-amd.js``
(which loads its chunks, fonts and styles from its own folder). The build fetches both
packages from the npm registry once, checks them against the integrity hashes pinned here
(the registry's own), and copies what the browser needs into ``docs/_static/widgets/``, so
that the built site shows working widgets offline, opened from disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request

PACKAGES = {
    "html-manager": (
        "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.6.tgz",
        "sha512-+Mn+Ra8wyIHrYaUpfmf9A3dsLkt/NuwzPQN8sthdxBD35VV5cOJbpmgMhNR27n/rmP3mKyEe0PWCJrtZ"
        "rXTXDQ==",
    ),
    "requirejs": (
        "https://registry.npmjs.org/requirejs/-/requirejs-2.3.4.tgz",
        "sha512-qPD5gRrj6kGQ0ZySAJgqbArkaDqPMbQIT0zSZDkIv1mfA17w/tR2Faq5l2qqRf2CdQx6FWln9nUrgd2U"
        "Dzb19A==",
    ),
}

#: What myst-nb adds to a page with widgets (paths relative to _static).
IPYWIDGETS_JS = {"widgets/require.js": {}, "widgets/html-manager/embed-amd.js": {}}


def _fetch(name: str, cache: str) -> bytes:
    url, integrity = PACKAGES[name]
    path = os.path.join(cache, os.path.basename(url))
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    else:
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                data = response.read()
        except OSError as exc:
            raise RuntimeError(
                f"Could not fetch {url} ({exc}): the documentation ships the widget manager's "
                "JavaScript, fetched once from the npm registry into docs/_build/npm. Build "
                "once with network access, or copy that folder from a machine that has it."
            ) from exc
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if f"sha512-{digest}" != integrity:
        raise RuntimeError(f"{url} does not match its pinned integrity hash {integrity}")
    os.makedirs(cache, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return data


def install(static_dir: str, cache: str) -> None:
    """Put the widget manager and RequireJS into ``static_dir/widgets`` (once)."""
    target = os.path.join(static_dir, "widgets")
    if os.path.exists(os.path.join(target, "html-manager", "embed-amd.js")):
        return
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, "html-manager"))
    with tarfile.open(fileobj=io.BytesIO(_fetch("html-manager", cache)), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            # The browser needs dist/ (the bundle, its chunks, fonts), not the source maps.
            if not name.startswith("package/dist/") or name.endswith(".map") or not member.isfile():
                continue
            with open(os.path.join(target, "html-manager", os.path.basename(name)), "wb") as f:
                f.write(tar.extractfile(member).read())
    with tarfile.open(fileobj=io.BytesIO(_fetch("requirejs", cache)), mode="r:gz") as tar:
        with open(os.path.join(target, "require.js"), "wb") as f:
            f.write(tar.extractfile("package/require.js").read())
