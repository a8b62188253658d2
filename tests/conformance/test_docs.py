"""``docs/outputs.md`` shows the conformance table generated from the test's definitions."""

from __future__ import annotations

from .render import DOC
from .table import BEGIN, END, render


def test_the_docs_table_is_the_one_the_matrix_checks():
    text = DOC.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"markers missing in {DOC}"
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == render(), (
        "docs/outputs.md's conformance table is out of date: run "
        "`python -m tests.conformance.render` from the repository root"
    )
