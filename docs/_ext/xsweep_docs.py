"""A small Sphinx extension for the xsweep documentation (loaded by docs/conf.py).

It does five things:

1. **Tutorials from notebooks/**: a ``docs/tutorials/NAME.nblink`` file holds
   ``{"path": "../../notebooks/NAME.ipynb"}``; when Sphinx reads it, its content is replaced
   by the notebook's (myst-nb then reads it as an ``.ipynb``, see ``nb_custom_formats`` in
   conf.py) and the notebook is recorded as a dependency of the page.
2. **Links that work on GitHub and on the site**: pages and notebooks link to each other with
   repository-relative paths (``../docs/parallel.md`` in a notebook,
   ``../notebooks/02_caching.ipynb`` or ``../CHANGELOG.md`` in a page), which GitHub and
   Jupyter follow. While reading, such links are rewritten to the site's documents. Links to
   other files outside docs/ are left alone, so that Sphinx reports them.
3. **Gallery images**: at the start of every build, ``gallery.py`` runs a short sweep and
   writes the PNGs that index.md and gallery.md show into ``docs/_static/generated/`` (not
   committed).
4. **API coverage**: every name in ``xsweep.__all__`` must be documented in the API reference
   (a ``py`` object ``xsweep.NAME``); a missing one is a warning, hence an error under -W.
5. **Doctest blocks without their last blank line**: the pages end each ``>>>`` block with an
   empty line, which doctest needs and readers do not.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

# Sphinx and docutils are imported where they are used: pytest imports this module while it
# collects doctests from docs/ (--doctest-modules), where they need not be installed.
if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx


def _logger():
    from sphinx.util import logging

    return logging.getLogger(__name__)


DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
GENERATED = DOCS / "_static" / "generated"

# A Markdown inline link's target: ](target) or ](target#anchor); no spaces, no scheme.
_LINK = re.compile(r"\]\((?P<target>[^()\s#:]+)(?P<anchor>#[^()\s]*)?\)")


def _nblink_target(app: Sphinx, docname: str) -> Path | None:
    """The notebook a .nblink page stands for, or None if ``docname`` is not one."""
    source = Path(app.env.doc2path(docname))
    if source.suffix != ".nblink":
        return None
    with open(source, encoding="utf-8") as fh:
        link = json.load(fh)
    return (source.parent / link["path"]).resolve()


def _site_path(repo_path: str, app: Sphinx) -> str | None:
    """The source file on the site for a repository path, or None if there is none."""
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/") :]
    if repo_path == "CHANGELOG.md":
        return "changelog.md"
    if repo_path.startswith("notebooks/") and repo_path.endswith(".ipynb"):
        name = posixpath.basename(repo_path)[: -len(".ipynb")]
        candidate = f"tutorials/{name}.nblink"
        if (DOCS / candidate).exists():
            return candidate
    return None


def _rewrite_links(text: str, repo_file: str, docname: str, app: Sphinx) -> str:
    """Rewrite repository-relative links in ``text`` (from ``repo_file``) for ``docname``."""
    repo_dir = posixpath.dirname(repo_file)
    site_dir = posixpath.dirname(docname)

    def replace(match: re.Match) -> str:
        target = match.group("target")
        repo_path = posixpath.normpath(posixpath.join(repo_dir, target))
        if repo_path.startswith("../"):
            return match.group(0)
        site = _site_path(repo_path, app)
        if site is None:
            return match.group(0)
        relative = posixpath.relpath(site, site_dir or ".")
        if relative == target:
            return match.group(0)
        return f"]({relative}{match.group('anchor') or ''})"

    return _LINK.sub(replace, text)


def read_source(app: Sphinx, docname: str, source: list[str]) -> None:
    """Substitute notebooks for .nblink files and rewrite repository-relative links."""
    notebook = _nblink_target(app, docname)
    if notebook is not None:
        if not notebook.exists():
            _logger().warning(
                f"{docname}.nblink names {notebook}, which does not exist",
                location=docname,
                type="xsweep",
                subtype="nblink",
            )
            return
        app.env.note_dependency(str(notebook))
        text = notebook.read_text(encoding="utf-8")
        repo_file = notebook.relative_to(ROOT).as_posix()
    else:
        text = source[0]
        repo_file = Path(app.env.doc2path(docname)).resolve().relative_to(ROOT).as_posix()
    source[0] = _rewrite_links(text, repo_file, docname, app)


def make_gallery(app: Sphinx) -> None:
    """Generate the gallery images before any page is read."""
    import gallery  # docs/_ext/gallery.py

    written = gallery.make_gallery(GENERATED)
    _logger().info(f"xsweep gallery: {', '.join(p.name for p in written)} in {GENERATED}")


def check_api_coverage(app: Sphinx, env) -> None:
    """Warn about names of xsweep.__all__ that no page documents."""
    import xsweep

    documented = set(env.get_domain("py").objects)
    missing = [name for name in xsweep.__all__ if f"xsweep.{name}" not in documented]
    if missing:
        _logger().warning(
            "public names of xsweep without an API entry (add them to docs/api.md): "
            + ", ".join(missing),
            type="xsweep",
            subtype="api",
        )


def trim_code_blocks(app: Sphinx, doctree: nodes.document) -> None:
    """Drop the trailing blank lines of literal blocks (the doctests' terminating line)."""
    from docutils import nodes

    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if text != text.rstrip("\n") and block.rawsource == text:
            # rawsource must match the text, or Sphinx takes it for a parsed-literal block
            # and does not highlight it.
            block.rawsource = text.rstrip("\n")
            block.children = [nodes.Text(block.rawsource)]


def setup(app: Sphinx) -> dict:
    app.connect("source-read", read_source)
    app.connect("builder-inited", make_gallery)
    app.connect("env-check-consistency", check_api_coverage)
    app.connect("doctree-read", trim_code_blocks)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
