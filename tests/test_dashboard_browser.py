"""The dashboard in a real JupyterLab, in headless Chromium, driven by Playwright.

Starts ``jupyter lab`` on 127.0.0.1 with a notebook that loads nbcache, runs two cached cells and
shows ``%cache_dashboard``; runs it twice (the second time both cells are hits), checks the
dashboard rendered, saves ``docs/dashboard.png``, and invalidates one entry with its button.
Chromium comes from Debian (installed here when missing); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "dashboard.png"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
TOKEN = "nbcache-dashboard-test"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        subprocess.run("apt-get update && apt-get install -y chromium", shell=True, check=True, capture_output=True)
        found = shutil.which("chromium")
    assert found, "chromium could not be installed"
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notebook(cache_dir: Path) -> Any:
    cells = [
        f"%load_ext nbcache\n%config NbCache.directory = {str(cache_dir)!r}",
        "%%cache --name slow_square\nimport time\ntime.sleep(0.6)\nsquare = 12 ** 2",
        "%%cache --name slow_total\nimport time\ntime.sleep(0.3)\ntotal = sum(range(10 ** 6))",
        "%cache_dashboard",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory: Any) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("lab")
    work = home / "work"
    work.mkdir()
    nbformat.write(notebook(home / "cache"), str(work / "dashboard.ipynb"))
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    log = open(home / "lab.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not start:\n" + (home / "lab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield url, home
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


KERNEL_READY = """() => {
    const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === 'connected' && kernel?.status === 'idle';
}"""
LAST_PROMPT_AFTER = """before => {
    const prompts = document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt');
    const found = prompts.length && prompts[prompts.length - 1].textContent.match(/\\[(\\d+)\\]/);
    return found && Number(found[1]) > before;
}"""


def run_all(page: Any) -> None:
    """Run > Run All Cells, then wait until the last cell has run."""
    deadline = time.monotonic() + 90
    while not page.evaluate(KERNEL_READY):
        # When the kernel list arrives late, JupyterLab asks which kernel to start: the default.
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()
        assert time.monotonic() < deadline, "the notebook's kernel never became ready"
        page.wait_for_timeout(250)
    prompt = page.locator(".jp-CodeCell .jp-InputArea-prompt").last.text_content() or ""
    before = int(prompt.strip(" []:") or 0) if prompt.strip(" []:").isdigit() else 0
    # Not awaited: the command's promise settles only when every cell ran, and page.evaluate
    # has no timeout of its own.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return null; }")
    page.wait_for_function(LAST_PROMPT_AFTER, arg=before, timeout=90_000)


def test_dashboard_in_jupyterlab(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, home = lab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{url}/lab/tree/dashboard.ipynb?token={TOKEN}")
            run_all(page)  # first run: both cells run and are stored
            dashboard = page.locator(".nbcache-dashboard")
            expect(dashboard.locator(".nbcache-totals")).to_contain_text("0 hits, 2 misses", timeout=60_000)
            run_all(page)  # second run: both are restored
            expect(dashboard.locator(".nbcache-totals")).to_contain_text("2 hits", timeout=60_000)

            rows = dashboard.locator(".nbcache-row:visible")
            expect(rows).to_have_count(2)
            expect(dashboard.locator(".nbcache-row:visible", has_text="slow_square")).to_have_count(1)
            expect(dashboard.locator("img")).to_have_count(2)
            page.wait_for_timeout(300)  # let the chart images finish decoding
            SCREENSHOT.parent.mkdir(exist_ok=True)
            dashboard.screenshot(path=str(SCREENSHOT))

            dashboard.locator("button[title='Invalidate slow_total']").click()
            expect(rows).to_have_count(1)
            expect(dashboard.locator(".nbcache-row:visible", has_text="slow_total")).to_have_count(0)
            manifests = list((home / "cache" / "manifests").glob("*.json"))
            assert len(manifests) == 1

            # A failing callback shows its traceback in the dashboard, not in the browser's console.
            # (``_`` is the dashboard: the last cell's result; a silent request leaves it alone.)
            page.evaluate(
                "() => Promise.race([window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                ".requestExecute({code: '_._cache = lambda: 1 / 0', silent: true, store_history: false})"
                ".done.then(() => 'done'), new Promise(resolve => setTimeout(() => resolve('timeout'), 15000))])"
            )
            dashboard.locator("button[title='Read the cache again']").click()
            expect(dashboard.locator(".jp-OutputArea-output")).to_contain_text("ZeroDivisionError", timeout=15_000)
        except BaseException:
            page.screenshot(path=str(home / "failure.png"))
            print(f"screenshot of the failure: {home / 'failure.png'}; server log: {home / 'lab.log'}")
            raise
        finally:
            browser.close()
