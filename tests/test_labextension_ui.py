"""The JupyterLab extension in a real browser: a real ``jupyter lab`` on 127.0.0.1 and Debian's
Chromium driven by Playwright. Badges appear on cached cells (stored, then hit after a restart) and
the panel's invalidate button makes the next run a miss; the toolbar toggle turns automatic mode on
and keeps it on across a restart. Screenshots go to docs/.

JupyterLab loads the extension this checkout built (``nbcache/labextension``, by ``npm run
build:prod``) when there is one, ahead of an installed copy: it comes first on ``JUPYTER_PATH``."""

from __future__ import annotations

import faulthandler
import json
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

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILT = ROOT / "nbcache" / "labextension"
TOKEN = "nbcache-ui-test"
IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
BADGE = ".jp-nbcache-badge[data-nbcache-status='{}']"
# Cold starts of a kernel took 30 s once on a busy CI machine.
SLOW = 90_000
WATCHDOG = 600

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing; `make test` installs it with apt-get")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")

CACHED = "%%cache\nimport time\ntime.sleep(1.5)\nanswer = 41 + 1\nprint('the answer is', answer)"
SKIPPED = "%%cache --skip\ndouble = answer * 2"
# automatic mode: no %load_ext, no %%cache; the toolbar toggle does it all
AUTO_SLOW = "import time\ntime.sleep(0.8)\nvalue = 6 * 7\nprint('value', value)"
AUTO_QUICK = "double = value * 2\nprint('double', double)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbcache"),
        nbformat.v4.new_code_cell(CACHED),
        nbformat.v4.new_code_cell(SKIPPED),
    ]
    nbformat.write(nb, str(root / "cached.ipynb"))
    nb.cells = [nbformat.v4.new_code_cell(AUTO_SLOW), nbformat.v4.new_code_cell(AUTO_QUICK)]
    nbformat.write(nb, str(root / "auto.ipynb"))
    settings = root / ".settings"
    # No "would you like news?" toast over the screenshots.
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port = _free_port()
    env = dict(os.environ, NBCACHE_DIR=str(root / ".nbcache"), JUPYTER_CONFIG_DIR=str(root / ".config"))
    if (BUILT / "package.json").exists():
        # this checkout's build first (the first extension of a name found wins)
        shared = root / ".jupyter-path" / "labextensions"
        shared.mkdir(parents=True)
        (shared / "nbcache").symlink_to(BUILT, target_is_directory=True)
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root / ".jupyter-path"), os.environ.get("JUPYTER_PATH")]))
    log = open(root / "lab.log", "w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / '.workspaces'}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as response:
                    json.load(response)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + (root / "lab.log").read_text())
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    # Last resort against a wedged browser or driver: show where it hangs and end the run
    # rather than let CI wait forever (every wait below has its own, shorter timeout).
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    try:
        yield from _page(lab)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _page(lab: str) -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.set_default_timeout(SLOW)
        # Browser errors end up in the test's output when it fails.
        page.on("console", lambda msg: print(f"[browser {msg.type}] {msg.text}") if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: print(f"[browser exception] {exc}"))
        page.goto(f"{lab}/lab/tree/cached.ipynb?token={TOKEN}")
        page.wait_for_selector(IDLE, timeout=SLOW)
        yield page
        browser.close()


# The notebook panel; _PANEL also makes it current (commands act on the current notebook).
def _find(path: str) -> str:
    return f"""() => window.jupyterapp && [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === '{path}')"""


def _panel(path: str) -> str:
    return f"""() => {{ const panel = ({_find(path)})(); window.jupyterapp.shell.activateById(panel.id); return panel; }}"""



# Commands are started, not awaited: page.evaluate has no timeout of its own, and the waits that
# follow (each with a timeout) say what did not happen.
def _ready(path: str) -> str:
    return f"""() => {{
  const panel = ({_find(path)})();
  return !!panel && panel.context.isReady && panel.sessionContext.isReady && !!panel.content.activeCell
    && panel.sessionContext.session?.kernel?.status === 'idle';
}}"""


def _scope(page: Any, path: str) -> str:
    """A selector for the notebook panel of ``path`` (other notebooks' cells stay in the page)."""
    return "#" + page.evaluate(f"() => ({_find(path)})().id")


def _run_all(page: Any, path: str = "cached.ipynb") -> None:
    page.wait_for_selector(IDLE, timeout=SLOW)
    page.wait_for_function(_ready(path), timeout=SLOW)
    prompt = f"{_scope(page, path)} .jp-Cell .jp-InputPrompt"
    before = page.locator(prompt).first.text_content()
    for _attempt in range(3):
        page.evaluate(f"() => {{ ({_panel(path)})(); void window.jupyterapp.commands.execute('notebook:run-all-cells'); }}")
        # Queued cells show [*] at once; on a cold start the first command was seen to do nothing.
        try:
            page.wait_for_function(
                "([selector, before]) => { const el = document.querySelector(selector); return el && el.textContent !== before; }",
                arg=[prompt, before],
                timeout=10_000,
            )
            return
        except playwright_api.TimeoutError:
            print(f"run-all attempt {_attempt + 1} did not start the cells; trying again")
    raise AssertionError("notebook:run-all-cells did not start the notebook's cells")


def _restart(page: Any, path: str = "cached.ipynb") -> None:
    page.evaluate(
        f"() => {{ window.nbcacheRestarted = false;"
        f" ({_panel(path)})().sessionContext.restartKernel().then(() => {{ window.nbcacheRestarted = true; }}); }}"
    )
    page.wait_for_function("window.nbcacheRestarted === true", timeout=SLOW)
    page.wait_for_selector(IDLE, timeout=SLOW)


def _cell_badge(page: Any, index: int, path: str = "cached.ipynb") -> Any:
    return page.locator(f"{_scope(page, path)} .jp-Cell").nth(index).locator(".jp-nbcache-badge")


def _wait_done(page: Any, path: str) -> None:
    """Until no cell of ``path`` is queued or running (``[*]``)."""
    page.wait_for_function(
        "(selector) => [...document.querySelectorAll(selector)].every(el => !el.textContent.includes('*'))",
        arg=f"{_scope(page, path)} .jp-Cell .jp-InputPrompt",
        timeout=SLOW,
    )


def _put_setting(lab: str, plugin: str, values: dict[str, Any]) -> None:
    body = json.dumps({"raw": json.dumps(values)}).encode()
    request = urllib.request.Request(
        f"{lab}/lab/api/settings/{plugin}", data=body, method="PUT",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def test_badges_panel_and_invalidate(page: Any, lab: str) -> None:
    expect = playwright_api.expect

    # 1. First run: a miss, stored; the --skip cell says why it was not cached.
    _run_all(page)
    expect(_cell_badge(page, 1)).to_have_attribute("data-nbcache-status", "stored", timeout=SLOW)
    expect(_cell_badge(page, 2)).to_have_attribute("data-nbcache-status", "skipped", timeout=SLOW)
    expect(_cell_badge(page, 2)).to_have_attribute("title", "nbcache: not cached: --skip was given (click for details)")
    expect(_cell_badge(page, 0)).to_have_count(0)

    # 2. After a restart the same cell is restored: a hit with the time saved.
    _restart(page)
    _run_all(page)
    badge = _cell_badge(page, 1)
    expect(badge).to_have_attribute("data-nbcache-status", "hit", timeout=SLOW)
    expect(badge).to_contain_text("saved 1.")
    page.wait_for_selector(IDLE, timeout=SLOW)
    page.screenshot(path=str(DOCS / "labextension-badges.png"))

    # The explanation: time saved, key, restored names and the kernel's explanation.
    badge.click()
    dialog = page.locator(".jp-Dialog .jp-nbcache-explanation")
    expect(dialog).to_contain_text("Time saved")
    expect(dialog).to_contain_text("answer")
    expect(dialog).to_contain_text("nbcache: hit: restored entry")  # the --explain answer
    page.screenshot(path=str(DOCS / "labextension-explain.png"))
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)

    # 3. The panel lists the entry with its hit; invalidating it empties the list...
    page.evaluate("window.jupyterapp.shell.activateById('nbcache-panel')")
    entries = page.locator("#nbcache-panel .jp-nbcache-entry")
    expect(entries).to_have_count(1, timeout=SLOW)
    expect(entries.first).to_contain_text("import time")
    expect(entries.first).to_contain_text("1 hit")
    expect(page.locator("#nbcache-panel .jp-nbcache-totals")).to_contain_text("1 entry")
    page.screenshot(path=str(DOCS / "labextension-panel.png"))
    entries.first.locator(".jp-nbcache-invalidate").click()
    expect(entries).to_have_count(0, timeout=SLOW)
    expect(page.locator("#nbcache-panel .jp-nbcache-totals")).to_contain_text("0 entries")

    # ...and the next run is a miss again, stored anew, listed again.
    _run_all(page)
    expect(_cell_badge(page, 1)).to_have_attribute("data-nbcache-status", "stored", timeout=SLOW)
    expect(entries).to_have_count(1, timeout=SLOW)

    # 4. Settings: hide the badges, panel on the left. After a reload the new page's comm gets the
    # kernel's latest statuses again (the badge exists) but it is hidden.
    _put_setting(lab, "nbcache:badges", {"showBadges": False})
    _put_setting(lab, "nbcache:panel", {"position": "left"})
    page.reload()
    page.wait_for_selector(IDLE, timeout=SLOW)
    expect(page.locator("body")).to_have_attribute("data-nbcache-badges", "hidden", timeout=SLOW)
    expect(page.locator("#jp-left-stack #nbcache-panel")).to_have_count(1)
    _run_all(page)
    expect(_cell_badge(page, 1)).to_have_attribute("data-nbcache-status", "hit", timeout=SLOW)
    expect(_cell_badge(page, 1)).to_be_hidden()


def test_toolbar_toggle_caches_every_cell_across_a_restart(page: Any, lab: str) -> None:
    expect = playwright_api.expect
    _put_setting(lab, "nbcache:badges", {"showBadges": True})  # (the test before hid them)
    page.goto(f"{lab}/lab/workspaces/auto/tree/auto.ipynb?reset&token={TOKEN}")
    page.wait_for_function(_ready("auto.ipynb"), timeout=SLOW)
    scope = _scope(page, "auto.ipynb")
    toggle = page.locator(f"{scope} .jp-nbcache-auto-item")
    expect(toggle).to_have_attribute("data-nbcache-auto", "off", timeout=SLOW)

    # 1. The toggle turns automatic mode on (loading nbcache: the notebook never does); the panel says so.
    toggle.locator(".jp-nbcache-auto-toggle").click()
    page.evaluate("window.jupyterapp.shell.activateById('nbcache-panel')")
    note = page.locator("#nbcache-panel .jp-nbcache-auto-note")
    expect(note).to_contain_text("Automatic caching is on", timeout=SLOW)
    expect(toggle).to_have_attribute("data-nbcache-auto", "on")

    # 2. Run all: the slow cell is stored (badge), the quick one just runs (no badge).
    _run_all(page, "auto.ipynb")
    expect(_cell_badge(page, 0, "auto.ipynb")).to_have_attribute("data-nbcache-status", "stored", timeout=SLOW)
    _wait_done(page, "auto.ipynb")
    expect(_cell_badge(page, 1, "auto.ipynb")).to_have_count(0)
    expect(page.locator(f"{scope} .jp-Cell").nth(1).locator(".jp-OutputArea-output")).to_contain_text("double 84")

    # 3. Restart: the new kernel gets automatic mode before Run All's cells; the slow cell hits.
    _restart(page, "auto.ipynb")
    _run_all(page, "auto.ipynb")
    badge = _cell_badge(page, 0, "auto.ipynb")
    expect(badge).to_have_attribute("data-nbcache-status", "hit", timeout=SLOW)
    expect(badge).to_contain_text("cached · saved")
    _wait_done(page, "auto.ipynb")
    expect(_cell_badge(page, 1, "auto.ipynb")).to_have_count(0)
    expect(page.locator(f"{scope} .jp-Cell").nth(0).locator(".jp-OutputArea-output").first).to_contain_text("value 42")
    expect(page.locator(f"{scope} .jp-Cell").nth(1).locator(".jp-OutputArea-output")).to_contain_text("double 84")
    expect(note).to_contain_text("Automatic caching is on", timeout=SLOW)
    expect(toggle).to_have_attribute("data-nbcache-auto", "on")
    page.screenshot(path=str(DOCS / "labextension-auto.png"))

    # 4. And off again: the panel's line goes, the next run caches nothing new.
    toggle.locator(".jp-nbcache-auto-toggle").click()
    expect(toggle).to_have_attribute("data-nbcache-auto", "off", timeout=SLOW)
    expect(note).to_be_hidden(timeout=SLOW)
