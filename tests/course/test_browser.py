"""A learner's view: JupyterLab in a real (headless) Chromium runs a notebook and its widgets work.

nbval proves the cells run; this proves what nbval cannot see: the notebook opens in JupyterLab, "Run All
Cells" finishes with no error output, the ipywidgets extension renders the beta slider of 01_derivation, and
moving the slider with the keyboard redraws the plot. A screenshot lands in build/screenshots/.

Needs Debian's `chromium` at /usr/bin/chromium (`make browser-deps` installs it as root; Playwright never
downloads a browser here) and the `playwright` package (the test extra). Where either is missing the test
skips, except in CI (``CI=true``), where it fails: CI must run it.
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

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("DPO_COURSE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The error outputs of the open notebook, read from JupyterLab's model (window.jupyterapp exists because the
# server runs with expose_app_in_browser): in the DOM an error looks exactly like a stderr stream.
ERRORS_JS = """() => {
    const errors = [];
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    for (let i = 0; i < cells.length; i++) {
        const outputs = cells.get(i).outputs;
        for (let j = 0; outputs && j < outputs.length; j++) {
            const out = outputs.get(j).toJSON();
            if (out.output_type === 'error') errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
        }
    }
    return errors;
}"""
RUN_TIMEOUT_S = 150  # the whole "Run All Cells" of one notebook

pytestmark = pytest.mark.slow


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(reason: str):
    if _in_ci():
        pytest.fail(f"CI must run the browser test, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sync_playwright():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing: run `make browser-deps` as root (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install -e '.[test]'")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """JupyterLab user settings: every cell in the DOM (so we can count them), no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free local port, serving a scratch folder (it autosaves: never the repo)."""
    home = tmp_path_factory.mktemp("lab")
    work = home / "work"
    work.mkdir()
    _write_settings(home / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        k: v for k, v in os.environ.items() if k != "MPLBACKEND"
    }  # the kernel must draw inline, not with Agg
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        DPO_COURSE_STRICT="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
        f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the default one asks pypi.org
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read outputs from the notebook's model
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    log = open(home / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                log.close()
                pytest.fail(f"JupyterLab did not start:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "work": work, "home": home}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _run_all_cells(page, n_code_cells: int) -> bool:
    """Run > Run All Cells from the menu bar; wait until every code cell ran or one shows an error.

    Returns whether every code cell got an execution count (JupyterLab stops at the first error).
    """
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=60_000)  # the kernel is up
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    return (
        page.wait_for_function(
            """n => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
            const ran = prompts.filter(p => /^\\[\\d+\\]:$/.test(p.textContent.trim())).length;
            const busy = prompts.some(p => p.textContent.includes('*'));
            if (prompts.length === n && ran === n) return 'all';
            if (!busy && (ERRORS_JS)().length) return 'error';
            return false;
        }""".replace("ERRORS_JS", ERRORS_JS),
            arg=n_code_cells,
            timeout=RUN_TIMEOUT_S * 1000,
            polling=500,
        ).json_value()
        == "all"
    )


# The src of the plot in the widget box that holds the slider labelled "beta" (null if none yet).
_PLOT_SRC_JS = """() => {
    const label = [...document.querySelectorAll('.widget-slider .widget-label')].find(l => l.textContent.trim() === 'beta');
    const img = label && label.closest('.widget-vbox') && label.closest('.widget-vbox').querySelector('img');
    return img ? img.getAttribute('src') : null;
}"""


def _settled_plot(page, before: str, timeout_s: float = 30.0) -> str | None:
    """The plot's src once it has changed from `before` and stopped changing, with the kernel idle.

    Every arrow key press is a redraw; the screenshot must show the last one, not one in between.
    """
    last, deadline = None, time.time() + timeout_s
    while time.time() < deadline:
        time.sleep(1.0)
        src = page.evaluate(_PLOT_SRC_JS)
        idle = page.locator("#jp-main-statusbar").get_by_text("Idle").count() > 0
        if src and src != before and idle and src == last:
            return src
        last = src
    return None


def _error_outputs(page) -> list[str]:
    return page.evaluate(ERRORS_JS)


def _open_notebook(lab, browser_context, name: str, folder: str = "solutions"):
    (lab["work"] / folder).mkdir(exist_ok=True)
    shutil.copy(ROOT / folder / f"{name}.ipynb", lab["work"] / folder / f"{name}.ipynb")
    page = browser_context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{lab['url']}/lab/tree/{folder}/{name}.ipynb?token={lab['token']}&reset")
    return page


@pytest.fixture(scope="module")
def browser_context(sync_playwright, lab):
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(lab["home"] / "chromium-profile"),  # a new, empty user data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


def _code_cells(name: str, folder: str = "solutions") -> int:
    nb = json.loads((ROOT / folder / f"{name}.ipynb").read_text())
    return sum(c["cell_type"] == "code" for c in nb["cells"])


# The solved notebook, and the learner's version (stubs say "not attempted" and fall back to the reference).
@pytest.mark.parametrize(("folder", "name"), [("solutions", "01_derivation"), ("notebooks", "01_derivation")])
def test_run_all_cells_and_move_the_beta_slider(browser_context, lab, folder, name):
    if not (ROOT / folder / f"{name}.ipynb").exists():
        pytest.fail(f"{folder}/{name}.ipynb does not exist")
    page = _open_notebook(lab, browser_context, name, folder)
    start = time.time()
    finished = _run_all_cells(page, _code_cells(name, folder))
    ran_s = time.time() - start
    errors = _error_outputs(page)
    assert not errors, f"{len(errors)} cell(s) show an error:\n\n" + "\n\n".join(errors)
    assert finished, "Run All Cells stopped before the last cell"
    outputs = page.locator(".jp-OutputArea-output")
    if folder == "solutions":
        assert (
            outputs.filter(has_text="✅").count() > 0
            and outputs.filter(has_text="not attempted").count() == 0
        )
    else:  # every exercise a stub: checks say so, and the cells below run on the course's reference
        assert (
            outputs.filter(has_text="not attempted yet").count() > 0
            and outputs.filter(has_text="✅").count() == 0
        )

    # The slider is an ipywidgets FloatSlider labelled "beta", in a VBox with the plot it drives. The plot's
    # <img> is replaced on every redraw, so read it afresh from the DOM each time.
    box = page.locator(
        ".widget-vbox", has=page.locator(".widget-slider .widget-label", has_text="beta")
    ).first
    box.wait_for(state="visible")
    box.scroll_into_view_if_needed()
    box.locator("img").first.wait_for(state="visible")
    before = page.evaluate(_PLOT_SRC_JS)
    readout_before = box.locator(".widget-readout").first.inner_text()
    assert before and before.startswith("data:image/png"), "the plot under the slider is not an inline PNG"

    box.locator(".noUi-handle").first.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    after = _settled_plot(page, before)
    readout_after = box.locator(".widget-readout").first.inner_text()
    assert readout_after != readout_before, f"the slider did not move ({readout_before} -> {readout_after})"
    assert after is not None and after != before, "moving the beta slider did not redraw the plot"
    box.scroll_into_view_if_needed()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / (f"{name}.png" if folder == "solutions" else f"{name}_{folder}.png")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    print(
        f"{folder}/{name}: Run All Cells took {ran_s:.0f} s; beta {readout_before} -> {readout_after}; screenshot {shot}"
    )
    page.close()


def test_an_error_output_is_seen(browser_context, lab):
    """The error check above is not vacuous: a planted exception is found, and Run All stops there."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "id": "ok",
                "metadata": {},
                "source": "import sys\nprint('a warning is not an error', file=sys.stderr)\nx = 41",
                "outputs": [],
                "execution_count": None,
            },
            {
                "cell_type": "code",
                "id": "bad",
                "metadata": {},
                "source": "raise ValueError(f'planted {x + 1}')",
                "outputs": [],
                "execution_count": None,
            },
            {
                "cell_type": "code",
                "id": "after",
                "metadata": {},
                "source": "y = 2",
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab["work"] / "planted_error.ipynb").write_text(json.dumps(nb))
    page = browser_context.new_page()
    page.goto(f"{lab['url']}/lab/tree/planted_error.ipynb?token={lab['token']}&reset")
    assert _run_all_cells(page, 3) is False
    errors = _error_outputs(page)
    assert errors == ["cell 1: ValueError: planted 42"], errors
    page.close()
