#!/usr/bin/env python
"""Check xsweep's live grid view in a real browser: the map fills while a sweep runs.

A standalone script, not a pytest test (tests/browser/conftest.py keeps pytest away from it),
built on ``check_widgets_in_browser.py`` (same prerequisites: Debian's ``chromium`` and
``chromium-driver``; ``selenium``, ``voila`` and ``ipywidgets`` in this Python).

What it does:

1. serves with Voila a notebook that shows ``ps.grid_view(slow)`` for a 6 x 8 grid and starts
   ``ps.sweep_async(slow)`` (0.12 s a cell, about 6 s in all);
2. opens it in headless Chromium and touches nothing;
3. reads the map (the first ``img.widget-image``) and its legend several times: the image
   must change at least three times while the legend's "computed" count grows, until all 48
   cells are computed; the map's first cell must then be the "computed" green;
4. saves a screenshot and prints ``1 passed, 0 failed`` (else ``0 passed, 1 failed``, exit 1).

Run it from the repository root::

    python tests/browser/check_grid_view_in_browser.py --screenshot grid.png
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_widgets_in_browser import PIXEL_JS, CheckFailed, log, main, wait_until  # noqa: E402

NOTEBOOK_CODE = """\
import time
import xsweep as xs

a = xs.Parameter("a", values=range(6))
b = xs.Parameter("b", values=range(8))
ps = xs.ParameterSpace([a, b])


def slow(a, b):
    time.sleep(0.12)
    return float(a * b)


view = ps.grid_view(slow, interval=0.2)
job = ps.sweep_async(slow, progress=False)
view
"""

#: The first cell's centre in the map: 8 px margin, 40 px cells (see xsweep.views.gridview._panels).
FIRST_CELL = (28, 28)
COMPUTED_GREEN = [46, 160, 67]
CELL_PIXEL_JS = PIXEL_JS.replace("getImageData(5, 5, 1, 1)", "getImageData(%d, %d, 1, 1)")


def run_check(driver, url: str, screenshot: Path, deadline: float) -> str:
    from selenium.webdriver.common.by import By

    def remaining(cap: float) -> float:
        return max(1.0, min(cap, deadline - time.monotonic()))

    def the_map():
        images = driver.find_elements(By.CSS_SELECTOR, "img.widget-image")
        return images[0] if images and images[0].get_attribute("src") else None

    def computed() -> int | None:
        for box in driver.find_elements(By.CSS_SELECTOR, ".widget-html"):
            found = dict(re.findall(r"(not computed|computed) (\d+)", box.text))
            if "not computed" in found and "computed" in found:
                return int(found["computed"])
        return None

    log(f"opening {url}")
    driver.get(url)
    wait_until(the_map, remaining(60), "the grid view's map")
    sources, counts = [], []
    end = time.monotonic() + remaining(40)
    while time.monotonic() < end:
        img = the_map()
        src = img.get_attribute("src") if img is not None else None
        count = computed()
        if src and (not sources or src != sources[-1]):
            sources.append(src)
            counts.append(count)
            log(f"map changed ({len(sources)}): computed {count}")
        if count == 48 and len(sources) >= 2:
            break
        time.sleep(0.1)
    if len(sources) < 4:
        raise CheckFailed(f"the map changed {len(sources) - 1} times while the sweep ran")
    seen = [c for c in counts if c is not None]
    if seen != sorted(seen) or len(set(seen)) < 3:
        raise CheckFailed(f"the computed count did not grow as cells landed: {counts}")
    if computed() != 48:
        raise CheckFailed(f"the sweep did not reach 48 computed cells in the map: {computed()}")
    pixel = wait_until(
        lambda: driver.execute_script(CELL_PIXEL_JS % FIRST_CELL, the_map()),
        remaining(10),
        "the map to load",
    )
    if pixel[:3] != COMPUTED_GREEN:
        raise CheckFailed(f"the first cell should be computed green, the map shows {pixel}")
    driver.save_screenshot(str(screenshot))
    log(f"screenshot saved to {screenshot}")
    return f"the map changed {len(sources) - 1} times, computed counts {seen}"


if __name__ == "__main__":
    sys.exit(
        main(
            code=NOTEBOOK_CODE,
            check=run_check,
            what="grid view",
            description=__doc__.split("\n\n")[0],
        )
    )
