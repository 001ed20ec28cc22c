"""Colab: one repository address in every notebook, and an install cell that leaves Colab's torch alone.

The simulation builds a fresh virtual environment whose preinstalled packages (torch, torchvision, numpy,
matplotlib, ipywidgets, ...) are this project's, reached through a ``.pth`` file as Colab's are through its
system site-packages; the repository address becomes a ``file://`` git URL of this checkout. pip runs offline
(``PIP_NO_INDEX``), so nothing is downloaded: a requirement that Colab's packages did not satisfy would fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from unlearnlab.course import build as B
from unlearnlab.course import notebooks as nbs

ROOT = nbs.course_root()
NOTEBOOKS = sorted(p for folder in ("solutions", "exercises", "notebooks") for p in (ROOT / folder).glob("*.ipynb"))
GITHUB = re.compile(r"github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?(?=[/\"'\s)@]|$)")
COLAB_PACKAGES = ("torch", "torchvision", "numpy", "matplotlib", "ipywidgets")


def _sources(path: Path) -> list[str]:
    return [cell.source for cell in nbs.read(path).cells]


def test_pyproject_declares_one_github_repository():
    url = B.repository_url()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert B.colab_url(url, "notebooks/x.ipynb").endswith(
        f"{url.removeprefix('https://github.com/')}/blob/main/notebooks/x.ipynb"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_carries_the_declared_address(path):
    """Badge and install cell point at pyproject's Repository; run `unlearnlab build` after changing it."""
    repository = B.repository_url().removeprefix("https://github.com/")
    text = "\n".join(_sources(path))
    found = set(GITHUB.findall(text))
    assert found == {repository}, f"{path.name} names {sorted(found)}, pyproject.toml declares {repository}"
    opened_as = f"exercises/{path.name}" if path.parent.name in ("solutions", "exercises") else f"notebooks/{path.name}"
    assert B.colab_url(B.repository_url(), opened_as) in text, f"{path.name}: no Colab badge for {opened_as}"
    assert B.INSTALL_CELL.format(repository=B.repository_url()) in text + "\n", f"{path.name}: install cell not stamped"


def test_solutions_readme_shows_the_declared_address():
    readme = (ROOT / "solutions" / "README.md").read_text(encoding="utf-8")
    assert set(GITHUB.findall(readme)) == {B.repository_url().removeprefix("https://github.com/")}


def test_stamp_rewrites_badge_and_install_block_and_nothing_else():
    cell_md = (
        "# T\n\n[![b](x.svg)](https://colab.research.google.com/github/old/name/blob/dev/exercises/01_a.ipynb) text"
    )
    install = (
        "import importlib.util\n\n"
        'if importlib.util.find_spec("unlearnlab") is None:  # old\n'
        '    subprocess.run(["pip", "install", "git+https://github.com/old/name"])\n'
        "\nprint(1)\n"
    )
    nb = B.nbs.NotebookNode(
        cells=[
            B.nbs.NotebookNode(cell_type="markdown", source=cell_md, metadata={}),
            B.nbs.NotebookNode(cell_type="code", source=install, metadata={}),
        ]
    )
    stamped = B.stamp(nb, "https://github.com/me/fork", "exercises/01_a.ipynb")
    assert stamped.cells[0].source == (
        "# T\n\n[![b](x.svg)](https://colab.research.google.com/github/me/fork/blob/main/exercises/01_a.ipynb) text"
    )
    assert stamped.cells[1].source == (
        "import importlib.util\n\n" + B.INSTALL_CELL.format(repository="https://github.com/me/fork") + "\nprint(1)\n"
    )
    assert B.stamp(stamped, "https://github.com/me/fork", "exercises/01_a.ipynb") == stamped  # idempotent
    assert nb.cells[1].source == install  # input untouched
    with pytest.raises(B.BuildError, match="GitHub"):
        B.stamp(nb, "https://gitlab.com/me/fork", "exercises/01_a.ipynb")


def _colab_like_environment(tmp_path: Path) -> Path:
    """A fresh venv whose preinstalled packages are this project's, without this project's own package."""
    venv = tmp_path / "colab"
    # no pip or setuptools of its own: like Colab's, they come preinstalled (recent ones, from ours)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    ours = Path(sysconfig.get_paths()["purelib"])
    preinstalled = tmp_path / "preinstalled"  # Colab's system site-packages, as links into ours
    preinstalled.mkdir()
    for entry in ours.iterdir():
        name = entry.name.lower()
        if name.startswith(("unlearnlab", "__editable__", "_unlearnlab")) or name.endswith(".pth"):
            continue
        (preinstalled / entry.name).symlink_to(entry)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "colab_preinstalled.pth").write_text(f"{preinstalled}\n")
    return python


def _setup_script(notebook: Path, file_url: str) -> str:
    """The notebook's parameters and setup cells (the first two code cells), with the address replaced."""
    code = [c for c in nbs.read(notebook).cells if c.cell_type == "code"][:2]
    assert "parameters" in code[0].metadata.get("tags", []) and 'find_spec("unlearnlab")' in code[1].source
    setup = code[1].source.replace(f"git+{B.repository_url()}", f"git+{file_url}")
    assert file_url in setup, "the install cell does not carry the declared address"
    return code[0].source + '\nPROFILE = "quick"\n' + setup


REPORT = """
import json, os, sys, importlib.metadata as md
import torch, unlearnlab
print("REPORT " + json.dumps({
    "unlearnlab": unlearnlab.__file__,
    "versions": {p: md.version(p) for p in %r},
    "paths": {p: os.path.realpath(__import__(p).__file__) for p in %r},
}))
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed: pip cannot clone the checkout")
def test_install_cell_on_a_colab_like_python_keeps_its_torch(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: the simulation installs from a file:// git URL of it")
    python = _colab_like_environment(tmp_path)
    notebook = ROOT / "exercises" / "01_relabel_freeze.ipynb"
    script = _setup_script(notebook, f"file://{ROOT}") + REPORT % (COLAB_PACKAGES, COLAB_PACKAGES)
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",  # offline: whatever Colab lacks would fail here instead of being downloaded
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling of --no-build-isolation: build with the preinstalled setuptools
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UNLEARNLAB_COURSE_ROOT": "",
    }
    env.pop("PYTHONPATH", None)
    work = tmp_path / "content"  # Colab's working folder: no unlearnlab/ beside the notebook
    work.mkdir()
    before = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('unlearnlab'))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
        env=env,
    ).stdout.strip()
    assert before == "None", "the Colab-like environment already has unlearnlab"
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "profile quick on" in done.stdout
    report = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("REPORT "))[7:])

    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert Path(report["unlearnlab"]).is_relative_to(site), "unlearnlab was not installed into the fresh environment"
    import importlib.metadata as md

    for package in COLAB_PACKAGES:
        assert report["versions"][package] == md.version(package), f"{package} was reinstalled at another version"
        assert report["paths"][package] == os.path.realpath(__import__(package).__file__), f"{package} was reinstalled"
        assert not list(site.glob(f"{package}*")), f"pip put {package} into the fresh environment"
    direct = json.loads(next(site.glob("unlearnlab-*.dist-info")).joinpath("direct_url.json").read_text())
    assert direct["url"] == f"file://{ROOT}" and "vcs_info" in direct
