#!/usr/bin/env python
"""Check that the built documentation shows working widgets offline, opened from disk.

A standalone script, like ``check_widgets_in_browser.py`` (it needs Debian's ``chromium``;
nothing else, not even Selenium). For each page given (default: the widgets tutorial of a
built site, ``docs/_build/html/tutorials/04_widgets.html``):

1. the page's HTML must load no script from another host (no CDN);
2. headless Chromium opens the file with every host name unresolvable (no network at all),
   runs its scripts, and the DOM it ends with must hold rendered widgets (sliders);
3. a screenshot of the page is saved (``--screenshot``).

Prints ``1 passed, 0 failed`` (or ``0 passed, 1 failed`` with the reason; exit status 1).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no host resolves: the page must be offline
    "--virtual-time-budget=20000",  # let the page's scripts run to completion
]


def check(page: Path, screenshot: Path, timeout: float) -> str | None:
    """None if the page passes, else what is wrong."""
    html = page.read_text(encoding="utf-8")
    remote = re.findall(r'<script[^>]*src="(https?://[^"]+)"', html)
    if remote:
        return f"{page} loads scripts from other hosts: {remote}"
    if "application/vnd.jupyter.widget-state+json" not in html:
        return f"{page} holds no widget state: nothing to check"
    url = page.resolve().as_uri()
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=timeout
    ).stdout
    sliders = len(re.findall(r'class="[^"]*\bwidget-slider\b', dom))
    if not sliders:
        return f"Chromium rendered no widget in {page} offline (no widget-slider in its DOM)"
    subprocess.run(
        [CHROMIUM, *FLAGS, "--window-size=1000,2400", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=timeout,
    )
    if not screenshot.exists() or screenshot.stat().st_size == 0:
        return "Chromium saved no screenshot"
    print(f"{page}: {sliders} sliders rendered offline; screenshot {screenshot}")
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pages", nargs="*", default=[Path("docs/_build/html/tutorials/04_widgets.html")], type=Path
    )
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="xsweep-docs-offline-"))
    problems = []
    for i, page in enumerate(args.pages):
        shot = args.screenshot if args.screenshot and i == 0 else folder / f"page-{i}.png"
        try:
            problem = check(page, shot, args.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = f"{page}: {exc}"
        if problem:
            problems.append(problem)
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"{len(args.pages) - len(problems)} passed, {len(problems)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
