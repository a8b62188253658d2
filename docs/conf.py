"""Sphinx configuration of the xsweep documentation.

Build it from the repository root (it needs the ``docs`` extra: ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing here reaches the network: no intersphinx, no remote images, no downloaded assets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))  # the local extension below, xsweep_docs.py

import widget_js  # noqa: E402  (docs/_ext/widget_js.py)

import xsweep  # noqa: E402

# -- project ------------------------------------------------------------------------------------
project = "xsweep"
author = "The xsweep developers"
copyright = "The xsweep developers"
release = xsweep.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ---------------------------------------------------------------------------------
extensions = [
    "myst_nb",  # Markdown pages (it brings myst_parser) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings are numpy style
    "sphinx.ext.autosummary",  # the summary tables of api.md (no generated stub pages)
    "sphinxcontrib.programoutput",  # `xsweep --help` texts, run at build time
    "xsweep_docs",  # docs/_ext/xsweep_docs.py: tutorials, links, gallery, API coverage
]

# Markdown pages and notebooks (.nblink: see xsweep_docs below) are both read by myst-nb.
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache", "**/.ipynb_checkpoints"]

# -- MyST ---------------------------------------------------------------------------------------
# Anchors for `page.md#a-heading` links, which the pages use so that they also work on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# -- notebooks ----------------------------------------------------------------------------------
# The tutorial notebooks live in notebooks/ at the repository root, outside this source folder,
# so that they open directly in Jupyter and tests/test_notebooks.py runs them. They are NOT
# copied: each docs/tutorials/NAME.nblink is a one-line JSON file {"path": "..."} naming a
# notebook relative to the link file (as nbsphinx-link does). The xsweep_docs extension
# substitutes the notebook for the link file's content when Sphinx reads it (and records the
# notebook as a dependency, so editing it rebuilds the page), and myst-nb reads that content as
# a plain .ipynb through `nb_custom_formats`. Links in a notebook that point into docs/ (for
# GitHub and Jupyter) are rewritten to the site's pages on the way. This works with -W, needs
# no symlinks (which Windows checkouts and zip archives lose) and no generated copies to keep
# in sync.
nb_custom_formats = {".nblink": ("nbformat.reads", {"as_version": 4}, False)}
# Notebooks are stored without outputs; they are executed at build time. "cache" keeps the
# outputs in docs/_build/.jupyter_cache and runs a notebook again only when its code cells
# change; XSWEEP_DOCS_EXECUTE=force re-runs them all (after a change in xsweep itself).
nb_execution_mode = os.environ.get("XSWEEP_DOCS_EXECUTE", "cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True  # ... with its traceback in the log
nb_execution_in_temp = True  # run in a temporary folder: nothing lands in docs/
nb_merge_streams = True
# Notebooks run on docs/_ext/quiet_kernel.py (an IPython kernel without ipykernel's warning
# about unencrypted loopback TCP, which alarmed readers of the build log); setup() installs
# its kernel spec for the build.
nb_kernel_rgx_aliases = {".*": "xsweep-docs"}
# Widgets load the widget manager shipped with the site (docs/_ext/widget_js.py), not a CDN:
# the built pages work offline, opened from disk.
nb_ipywidgets_js = widget_js.IPYWIDGETS_JS

# -- API reference (autodoc) ----------------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
autosummary_generate = False  # api.md lists everything itself
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
programoutput_use_ansi = False

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"xsweep {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"changelog": []}
html_static_path = ["_static"]  # xsweep.css; the build also writes generated/ (gallery) here
html_css_files = ["xsweep.css"]
html_show_sourcelink = False


# -- environment ----------------------------------------------------------------------------------
# Sphinx calls this; pytest, which imports this file while collecting doctests from docs/
# (--doctest-modules), does not, so the test session's environment stays untouched.
def setup(app):
    # Figures in executed notebooks: the kernel inherits this process's environment, and CI
    # sets MPLBACKEND=Agg, under which a notebook shows no figure. The inline backend does.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # `{program-output} xsweep ...` runs the console script of this Python environment (the
    # xsweep being documented), whatever PATH the build was started with.
    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    _install_quiet_kernel()
    here = os.path.dirname(os.path.abspath(__file__))
    widget_js.install(os.path.join(here, "_static"), os.path.join(here, "_build", "npm"))


def _install_quiet_kernel():
    """The kernel spec ``xsweep-docs`` (see nb_kernel_rgx_aliases), in a temporary folder."""
    import atexit
    import json
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="xsweep-docs-kernel-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    spec = os.path.join(root, "kernels", "xsweep-docs")
    os.makedirs(spec)
    launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext", "quiet_kernel.py")
    with open(os.path.join(spec, "kernel.json"), "w") as f:
        json.dump(
            {
                "argv": [sys.executable, launcher, "-f", "{connection_file}"],
                "display_name": "Python 3 (xsweep docs)",
                "language": "python",
                "metadata": {"debugger": False},
            },
            f,
        )
    os.environ["JUPYTER_PATH"] = root + os.pathsep + os.environ.get("JUPYTER_PATH", "")
