"""JupyterLab in a real browser: an exercise and a lecture notebook run there, and a widget reacts to its slider.

Starts JupyterLab from this environment on 127.0.0.1 with a token, drives headless Chromium through Selenium
(Debian's ``chromium`` and ``chromium-driver``; ``make browser`` installs them as root), and saves a screenshot
in the test's output folder (``$UNLEARNLAB_BROWSER_OUT`` when set, else pytest's temporary folder). Skips, saying
what is missing, where there is no browser.
"""

from __future__ import annotations

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

from unlearnlab.course import notebooks as nbs

ROOT = nbs.course_root()
EXERCISE = ROOT / "exercises" / "01_relabel_freeze.ipynb"
LECTURE = ROOT / "notebooks" / "explore_distillation_temperature.ipynb"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
TIMEOUT = int(os.environ.get("UNLEARNLAB_BROWSER_TIMEOUT", 300))  # seconds for a notebook's cells on a busy 2-core CPU

pytestmark = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason="no Chromium and chromedriver: install them with `make browser` (root, apt: chromium chromium-driver)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """JupyterLab serving copies of the two notebooks (the checkout stays untouched); yields (url, token)."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: pip install -e '.[dev]'")
    work = tmp_path / "lab"
    work.mkdir()
    for path in (EXERCISE, LECTURE):
        shutil.copy(path, work / path.name)
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if os.geteuid() == 0:  # containers and CI machines often run as root
        command.append("--allow-root")
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no user settings, no saved workspace
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    with open(tmp_path / "jupyterlab.log", "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture()
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed: pip install -e '.[dev]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(TIMEOUT)  # a command's promise may wait for a cell to run
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout: float = TIMEOUT):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except TimeoutException:
        driver.save_screenshot(str(Path(os.environ.get("UNLEARNLAB_BROWSER_OUT") or ".") / "timeout.png"))
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _open(driver, url: str, token: str, name: str) -> None:
    driver.get(f"{url}/lab/tree/{name}?token={token}")
    _wait(driver, lambda d: d.execute_script("return !!window.jupyterapp"), "JupyterLab to load", 120)
    _wait(
        driver,
        lambda d: d.execute_script(
            "const w = window.jupyterapp.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.status === 'idle' && w.context.path.endsWith(arguments[0]))",
            name,
        ),
        f"{name} to open with an idle kernel",
        120,
    )


def _run(driver, command: str, wait: bool = True) -> None:
    """Execute a JupyterLab command; ``wait``: until its promise resolves (for a run command: its cells ran)."""
    script = (
        "return window.jupyterapp.commands.execute(arguments[0])"
        if wait
        else ("window.jupyterapp.commands.execute(arguments[0]); return null")
    )
    driver.execute_script(script, command)


def _outputs(driver) -> str:
    return driver.execute_script(
        "return Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea-output'))"
        ".map(e => e.innerText).join('\\n')"
    )


def test_jupyterlab_runs_an_exercise_and_a_lecture_widget_reacts(lab, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, token = lab
    out = Path(os.environ.get("UNLEARNLAB_BROWSER_OUT") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)

    # the exercise: its parameters and setup cells (imports; the install block is skipped: the package is here)
    _open(browser, url, token, EXERCISE.name)
    cells = nbs.read(EXERCISE).cells
    setup = [k for k, c in enumerate(cells) if c.cell_type == "code"][1]
    for _ in range(setup + 1):  # from the title cell down to the setup cell
        _run(browser, "notebook:run-cell-and-select-next")
    _wait(browser, lambda d: "profile " in _outputs(d), "the exercise's setup cell to print its profile")
    assert "Error" not in _outputs(browser), _outputs(browser)
    browser.save_screenshot(str(out / "exercise.png"))

    # the lecture: every cell, then the interact widget's slider
    _open(browser, url, token, LECTURE.name)
    _run(browser, "notebook:run-all-cells", wait=False)
    slider = _wait(
        browser,
        lambda d: (d.find_elements(By.CSS_SELECTOR, ".widget-interact .noUi-handle") or [None])[0],
        "the temperature slider to render",
    )
    interact = browser.find_element(By.CSS_SELECTOR, ".widget-interact")
    _wait(browser, lambda d: "T = 4:" in interact.text, "the widget's output at T = 4")
    assert "Error" not in _outputs(browser), _outputs(browser)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    slider.click()
    for _ in range(4):  # four steps of 0.25 in log2(T): T = 4 -> 8
        slider.send_keys(Keys.ARROW_RIGHT)
    _wait(browser, lambda d: "T = 8:" in interact.text, "the widget to redraw at T = 8 after the slider moved", 120)
    _wait(browser, lambda d: interact.find_elements(By.CSS_SELECTOR, "img"), "the widget's figure at T = 8", 120)
    browser.save_screenshot(str(out / "jupyterlab.png"))
    assert (out / "jupyterlab.png").stat().st_size > 10_000
