"""The walkthrough as a reader meets it: JupyterLab on 127.0.0.1 with a token, driven by a real headless Chromium.

Playwright drives Debian's ``chromium`` (``executable_path``; no browser is ever downloaded). The test opens a copy
of notebooks/00_walkthrough.ipynb, runs every cell, and checks that the clip viewer is the live widget (not the
headless picture), that moving the frame slider changes the frame image and the per-frame J, and that the browser
console logged no errors. ``.ci/run`` installs Debian's chromium when missing; elsewhere the test is skipped with
the reason when no browser (or Playwright) is found. Screenshots go to ``$COPROP_SCREENSHOT_DIR`` when it is set.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from coprop.paths import repo_root

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# JupyterLab must not ask the internet for news or updates (no network here, and a toast would cover the page)
# (user settings: <JUPYTERLAB_SETTINGS_DIR>/<extension>/<plugin>.jupyterlab-settings)
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"}}


def chromium_path() -> str | None:
    for name in ("COPROP_CHROMIUM",):
        if os.environ.get(name) and Path(os.environ[name]).exists():
            return os.environ[name]
    for cand in ("chromium", "chromium-browser"):
        found = shutil.which(cand)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 over a copy of the repository's layout: jupytext.toml, the walkthrough pair
    in notebooks/, and an executed report in reports/00_walkthrough/; yields (base url, token, root)."""
    pytest.importorskip("playwright.sync_api", reason="Playwright not installed (pip install -e .[test])")
    tmp_path = tmp_path_factory.mktemp("browser")   # one JupyterLab for both tests of this module
    if chromium_path() is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium; or set COPROP_CHROMIUM)")
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    (root / "reports" / "00_walkthrough").mkdir(parents=True)
    shutil.copy(repo_root() / "jupytext.toml", root / "jupytext.toml")
    for ext in ("ipynb", "py"):
        shutil.copy(repo_root() / "notebooks" / f"00_walkthrough.{ext}", root / "notebooks" / f"00_walkthrough.{ext}")
    settings = tmp_path / "settings"
    for plugin, values in LAB_SETTINGS.items():
        f = settings / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_CURRENT_TEST", "COPROP_HEADLESS")}
    env.update(COPROP_HEADLESS="0",   # the pytest process set it to 1; a reader's JupyterLab is interactive
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _executed_report(tmp_path: Path) -> Path:
    """An executed report made the way every report is made: ``coprop.runner`` (papermill) on a small notebook
    carrying the walkthrough's notebook metadata (kernelspec, jupytext) and a formatted table."""
    import nbformat

    from coprop import runner

    src = nbformat.read(str(repo_root() / "notebooks" / "00_walkthrough.ipynb"), as_version=4)
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    nb = nbformat.v4.new_notebook(metadata=src.metadata)
    nb.cells = [nbformat.v4.new_code_cell('output_dir: str = "reports/_scratch/x"  # artefacts',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import pandas as pd\nfrom coprop.report_tables import format_table\n"
                                          "format_table(pd.DataFrame({'m': ['a', 'b'], 'J %': [1.25, 2.5]}), 'T.')")]
    nbformat.write(nb, str(nbs / "00_walkthrough.ipynb"))
    res = runner.run_notebooks(None, run="demo", notebooks=nbs, reports=tmp_path / "reports", progress_bar=False,
                               echo=lambda *_: None)[0]
    assert res.status == "ok", res.error
    return res.output_notebook


def _open(page, base: str, token: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?token={token}")
    page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
    select = page.get_by_role("button", name="Select", exact=True)
    try:   # a fresh JupyterLab may ask which kernel to start, even for a notebook that names python3
        select.wait_for(timeout=5_000)
        select.click()
    except Exception:  # noqa: BLE001 - no dialog: the kernel starts on its own
        pass
    # ':visible': the shared server's workspace may restore another notebook's tab, whose indicator is hidden
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']:visible").first.wait_for(timeout=120_000)


def _shoot(locator, name: str) -> None:
    where = os.environ.get("COPROP_SCREENSHOT_DIR")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        locator.screenshot(path=str(Path(where) / name))


def test_walkthrough_viewer_is_live_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        _open(page, base, token, "notebooks/00_walkthrough.ipynb")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        slider = page.locator(".widget-slider .noUi-handle").first
        try:
            slider.wait_for(timeout=240_000)   # the viewer is the notebook's second-to-last cell
        except Exception:
            page.screenshot(path=str(root.parent / "failure.png"), full_page=True)
            outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
            pytest.fail("no live viewer appeared; outputs:\n" + "\n---\n".join(o[:500] for o in outputs)
                        + "\nconsole:\n" + "\n".join(errors) + f"\nscreenshot: {root.parent / 'failure.png'}")
        viewer = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".widget-slider")).first
        viewer.scroll_into_view_if_needed()
        panels = viewer.locator(".widget-gridbox img")
        assert panels.count() == 5, "frame, GT and three methods"   # frame, GT, baseline, Co-Prop x2
        j_table = viewer.locator("table").filter(has_text="J, frame").first
        before_img = panels.nth(2).get_attribute("src")
        before_j = j_table.inner_text()
        assert "J, frame 0 (%)" in before_j
        _shoot(viewer, "viewer-frame0.png")
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("([el, old]) => el.getAttribute('src') !== old",
                               arg=[panels.nth(2).element_handle(), before_img], timeout=30_000)
        # a locator, not an element handle: the widget may replace the table's node after the image changed, and a
        # handle to the old node would never see the new text (a race that failed under load)
        viewer.locator("table").filter(has_text="J, frame 1 (%)").first.wait_for(timeout=30_000)
        assert j_table.inner_text() != before_j
        _shoot(viewer, "viewer-frame1.png")
        # panel labels fit their panels (wrap, never cut or overlap) and panels share one size, 1000 to 1800 px
        for width in (1000, 1800):
            page.set_viewport_size({"width": width, "height": 1000})
            page.wait_for_timeout(500)
            fit = viewer.locator(".widget-gridbox .widget-html > .widget-html-content > div").evaluate_all(
                "els => els.map(e => [e.scrollWidth <= e.clientWidth + 1, e.getBoundingClientRect().bottom])")
            assert len(fit) == 5 and all(ok for ok, _ in fit), f"a panel label is cut at {width} px: {fit}"
            boxes = [panels.nth(i).bounding_box() for i in range(5)]
            assert len({round(b["width"]) for b in boxes}) == 1 and len({round(b["y"]) for b in boxes}) == 1, \
                f"panels differ in size or height at {width} px: {boxes}"
            _shoot(viewer, f"viewer-{width}px.png")
        # the headless picture must not be there: no output image outside the widget in the viewer's cell
        cell = page.locator(".jp-CodeCell").filter(has=viewer).first
        assert cell.locator(".jp-RenderedImage").count() == 0
        page.wait_for_timeout(500)
        browser.close()
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_executed_report_opens_clean_and_saves_no_pair(lab):
    """Opening an executed report does not mark it changed; saving it writes no jupytext pair beside it."""
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    folder = root / "reports" / "00_walkthrough"
    shutil.copy(_executed_report(root.parent), folder / "00_walkthrough-demo.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        _open(page, base, token, "reports/00_walkthrough/00_walkthrough-demo.ipynb")
        page.wait_for_timeout(3_000)   # JupyterLab marks a notebook dirty right after loading it, if at all
        tab = page.locator(".lm-TabBar-tab.jp-mod-current").first
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), "report marked changed on opening"
        assert "00_walkthrough-demo.ipynb" in tab.inner_text()
        _shoot(page.locator(".jp-NotebookPanel").first, "report-opened.png")
        page.keyboard.press("Control+s")
        page.wait_for_timeout(2_000)
        browser.close()
    assert sorted(f.name for f in folder.iterdir() if not f.name.startswith(".")) == ["00_walkthrough-demo.ipynb"]
