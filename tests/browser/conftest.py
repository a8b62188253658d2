"""Keep pytest out of this folder: the browser check is a standalone script.

pytest runs with ``--doctest-modules --doctest-glob='*.md'`` over ``tests/``, which would
import ``check_widgets_in_browser.py`` (it needs Chromium, Selenium and Voila) and read this
folder's README as a doctest file. Run the check directly instead; see README.md here.
"""

collect_ignore = [
    "check_widgets_in_browser.py",
    "check_grid_view_in_browser.py",
    "check_docs_offline.py",
    "README.md",
]
