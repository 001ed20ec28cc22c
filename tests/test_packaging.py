import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_installs_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_section = lines[[line.strip() for line in lines].index("- pip:") + 1 :]
    listed = {line.strip()[2:] for line in pip_section if line.strip().startswith("- ") and "-e ." not in line}
    assert {_name(r) for r in listed} == {_name(r) for r in wanted}
    assert listed == wanted  # same version bounds too


def test_console_script_lists_its_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "unlearnlab.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("data", "run", "build", "grade"):
        assert command in out


def test_data_command_finds_the_real_files():
    out = subprocess.run(
        [sys.executable, "-m", "unlearnlab.cli", "data", "--offline"], capture_output=True, text=True, check=True
    ).stdout
    assert "train: 60,000 images" in out and "test : 10,000 images" in out
