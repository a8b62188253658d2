#!/usr/bin/env python
"""Check xsweep's explore view in a real browser: move the slider, see the image change.

A standalone script, not a pytest test (tests/browser/conftest.py keeps pytest away from it).
It installs nothing. It needs:

- Debian's ``chromium`` (``/usr/bin/chromium``) and ``chromium-driver``
  (``/usr/bin/chromedriver``);
- in the Python that runs this script, with xsweep importable: ``selenium``, ``voila`` and
  ``ipywidgets`` (``pip install selenium voila 'xsweep-nc[notebook]'``).

What it does:

1. writes a tiny notebook to a temporary folder: a space with one numeric parameter, a
   function returning a small uint8 image whose colour depends on the value, and
   ``ps.explore(fn, background=False)`` displayed;
2. serves it with Voila on 127.0.0.1 only (a live kernel behind the page);
3. opens it in headless Chromium driven by Selenium (Selenium Manager is never asked to
   download anything: the driver and browser paths are given);
4. waits for the view's image, records its ``src`` and its pixel colour;
5. clicks the slider handle and presses ArrowRight (falls back to dragging the handle);
6. waits until the image ``src`` changes, and checks the status line and the new colour;
7. saves a screenshot (``--screenshot``, default a temporary file) and prints
   ``1 passed, 0 failed``; on any failure ``0 passed, 1 failed`` and exit status 1.

The server and the browser are always stopped; the whole run is bounded (``--timeout``,
120 s by default).

Run it from the repository root::

    python tests/browser/check_widgets_in_browser.py --screenshot widgets.png
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--window-size=1000,700",
]

# The notebook served to the browser. Level 0 is pure blue; each step right adds red.
NOTEBOOK_CODE = """\
import numpy as np
import xsweep as xs

level = xs.Parameter("level", values=[0, 64, 128, 192, 255])
ps = xs.ParameterSpace([level])


def shade(level):
    image = np.zeros((60, 120, 3), dtype=np.uint8)
    image[..., 0] = level
    image[..., 2] = 255 - level
    return image


view = ps.explore(shade, background=False)
view
"""

# Reads the pixel at (x=5, y=5) of a loaded <img> (a same-origin blob: URL, so no taint).
PIXEL_JS = """
const img = arguments[0];
if (!img.complete || !img.naturalWidth) { return null; }
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
const ctx = canvas.getContext('2d');
ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(5, 5, 1, 1).data);
"""


class CheckFailed(Exception):
    """The check ran and what it saw is wrong (or it could not run)."""


class OverallTimeout(BaseException):
    """Raised by SIGALRM when the whole run took too long."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(folder: Path, code: str = NOTEBOOK_CODE) -> Path:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "explore",
                "metadata": {},
                "outputs": [],
                "source": code.splitlines(keepends=True),
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = folder / "explore_check.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    return path


def check_prerequisites(chromium: str, chromedriver: str) -> None:
    missing = []
    for name, path in (("chromium", chromium), ("chromium-driver", chromedriver)):
        if not os.access(path, os.X_OK):
            missing.append(f"{path} (apt-get install -y {name})")
    for module, pip_name in (
        ("selenium", "selenium"),
        ("voila", "voila"),
        ("ipywidgets", "'xsweep-nc[notebook]'"),
        ("xsweep", "-e . (from the repository root)"),
    ):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python module {module} (pip install {pip_name})")
    if missing:
        raise CheckFailed("missing prerequisites: " + "; ".join(missing))


def start_server(notebook: Path, port: int, folder: Path) -> tuple[subprocess.Popen, Path]:
    """Voila on 127.0.0.1:port serving ``notebook``; its output goes to a log file."""
    env = dict(os.environ)
    # Keep the server away from the user's Jupyter config and runtime files.
    env["JUPYTER_CONFIG_DIR"] = str(folder / "jupyter-config")
    env["JUPYTER_RUNTIME_DIR"] = str(folder / "jupyter-runtime")
    env["JUPYTER_DATA_DIR"] = str(folder / "jupyter-data")  # the notebook-signing key
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    log_path = folder / "voila.log"
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",  # fail rather than silently serve on another port
        "--show_tracebacks=True",
    ]
    log(f"starting Voila on 127.0.0.1:{port}")
    with open(log_path, "wb") as out:
        server = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    return server, log_path


def wait_for_server(server: subprocess.Popen, port: int, deadline: float) -> None:
    """Until the port accepts connections (a GET of the page would start a kernel)."""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"Voila exited with status {server.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise CheckFailed(f"Voila did not listen on 127.0.0.1:{port} in time")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM Voila (it shuts its kernels down), then SIGKILL its process group if needed."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log("Voila did not stop on SIGTERM; killing its process group")
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.wait(timeout=5)
    log(f"Voila stopped (exit status {server.returncode})")


def start_browser(chromium: str, chromedriver: str, folder: Path):
    # Belt and braces: never let Selenium Manager look for or download a driver.
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={folder / 'chromium-profile'}")
    service = Service(chromedriver, log_output=str(folder / "chromedriver.log"))
    log("starting headless Chromium")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(10)
    return driver


def wait_until(condition, timeout: float, what: str, poll: float = 0.2):
    """The first truthy ``condition()`` within ``timeout`` seconds, else CheckFailed."""
    end = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < end:
        try:
            value = condition()
        except Exception as exc:  # stale elements while the page renders
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(poll)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


def run_check(driver, url: str, screenshot: Path, deadline: float) -> str:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def remaining(cap: float) -> float:
        return max(1.0, min(cap, deadline - time.monotonic()))

    def image():
        images = driver.find_elements(By.CSS_SELECTOR, "img.widget-image")
        return images[0] if images and images[0].get_attribute("src") else None

    def status_text() -> str:
        boxes = driver.find_elements(By.CSS_SELECTOR, ".widget-html")
        return " | ".join(b.text for b in boxes if "level=" in b.text)

    def pixel(img):
        return driver.execute_script(PIXEL_JS, img)

    log(f"opening {url}")
    driver.get(url)
    img = wait_until(image, remaining(60), "the explore view's image")
    first_src = img.get_attribute("src")
    first_pixel = wait_until(lambda: pixel(image()), remaining(10), "the image to load")
    log(f"image shown: src={first_src[:60]} pixel={first_pixel} status={status_text()!r}")
    if "level=0" not in status_text():
        raise CheckFailed(f"the status line does not show level=0: {status_text()!r}")
    if first_pixel[:3] != [0, 0, 255]:
        raise CheckFailed(f"level 0 should be pure blue, the image shows {first_pixel}")

    handle = wait_until(
        lambda: driver.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle"),
        remaining(10),
        "the slider handle",
    )

    def changed():
        current = image()
        src = current.get_attribute("src") if current is not None else None
        return src if src and src != first_src else None

    log("moving the slider: click the handle, press ArrowRight")
    ActionChains(driver).click(handle).send_keys(Keys.ARROW_RIGHT).perform()
    try:
        new_src = wait_until(changed, remaining(20), "the image to change after ArrowRight")
    except CheckFailed as exc:
        log(f"{exc}; dragging the handle instead")
        track = driver.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-base")
        ActionChains(driver).click_and_hold(handle).move_by_offset(
            track.size["width"] // 4, 0
        ).release().perform()
        new_src = wait_until(changed, remaining(20), "the image to change after dragging")
    new_pixel = wait_until(lambda: pixel(image()), remaining(10), "the new image to load")
    status = wait_until(
        lambda: status_text() if "level=0" not in status_text() else None,
        remaining(10),
        "the status line to follow the slider",
    )
    log(f"image changed: src={new_src[:60]} pixel={new_pixel} status={status!r}")
    if new_pixel[:3] == first_pixel[:3]:
        raise CheckFailed(f"the image src changed but its colour did not: {new_pixel}")
    if not new_pixel[0] > 0:
        raise CheckFailed(f"moving right should add red, the image shows {new_pixel}")

    driver.save_screenshot(str(screenshot))
    log(f"screenshot saved to {screenshot}")
    return f"src changed, colour {first_pixel[:3]} -> {new_pixel[:3]}, status {status!r}"


def main(
    argv: list[str] | None = None,
    *,
    code: str = NOTEBOOK_CODE,
    check=None,
    what: str = "explore view",
    description: str | None = None,
) -> int:
    """Serve a notebook of ``code`` with Voila, open it in Chromium and run ``check`` on it.

    ``check(driver, url, screenshot, deadline)`` returns a one-line detail or raises
    ``CheckFailed``; by default :func:`run_check` (the explore view).
    """
    check = check or run_check
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0])
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="where to save the PNG screenshot (default: a temporary file)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="overall time limit in seconds (default 120)"
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"default {CHROMIUM}")
    parser.add_argument("--chromedriver", default=CHROMEDRIVER, help=f"default {CHROMEDRIVER}")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (notebook, logs, browser profile)",
    )
    args = parser.parse_args(argv)

    start = time.monotonic()
    deadline = start + args.timeout
    folder = Path(tempfile.mkdtemp(prefix="xsweep-browser-"))
    screenshot = args.screenshot or Path(
        tempfile.NamedTemporaryFile(prefix="xsweep-widgets-", suffix=".png", delete=False).name
    )
    screenshot = screenshot.resolve()
    server = driver = log_path = None
    ok, detail = False, ""

    def on_alarm(signum, frame):
        raise OverallTimeout(f"the check took longer than {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(args.timeout)))
    try:
        check_prerequisites(args.chromium, args.chromedriver)
        notebook = write_notebook(folder, code)
        port = args.port or free_port()
        url = f"http://127.0.0.1:{port}/"
        server, log_path = start_server(notebook, port, folder)
        wait_for_server(server, port, min(deadline, time.monotonic() + 60))
        driver = start_browser(args.chromium, args.chromedriver, folder)
        detail = check(driver, url, screenshot, deadline)
        ok = True
    except (CheckFailed, OverallTimeout) as exc:
        detail = str(exc)
    except Exception as exc:  # selenium errors and the like: a failure, with its type
        detail = f"{type(exc).__name__}: {exc}".strip()
    finally:
        signal.alarm(0)
        if driver is not None:
            signal.alarm(20)  # cleanup is bounded too
            try:
                if not ok:
                    driver.save_screenshot(str(screenshot))  # the page when it failed
                    log(f"screenshot of the failure saved to {screenshot}")
                driver.quit()
            except BaseException:
                pass
            finally:
                signal.alarm(0)
        if server is not None:
            stop_server(server)
        if not ok and log_path is not None and log_path.exists():
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            print("--- last lines of the Voila log ---", *tail, "---", sep="\n", flush=True)
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    took = time.monotonic() - start
    if ok:
        print(f"PASSED {what} in Chromium: {detail}")
        print(f"1 passed, 0 failed in {took:.1f}s")
        return 0
    print(f"FAILED {what} in Chromium: {detail}")
    print(f"0 passed, 1 failed in {took:.1f}s")
    return 1


if __name__ == "__main__":
    sys.exit(main())
