"""Rewrite the generated conformance table in ``docs/outputs.md``.

Run from the repository root: ``python -m tests.conformance.render``.
"""

from __future__ import annotations

from pathlib import Path

from .table import replace_block

DOC = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    new = replace_block(text)
    if new != text:
        DOC.write_text(new, encoding="utf-8")
        print(f"rewrote the conformance table in {DOC}")
    else:
        print(f"{DOC} is up to date")


if __name__ == "__main__":
    main()
