"""Packaging facts a fresh checkout relies on: the README's commands, .ci/run, the console script."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_opens_with_install_and_classify_then_install_and_test():
    first, second = _readme_commands()[:2]
    assert "pip install" in first and "promptlearn classify" in first
    assert "pip install" in second and "pytest" in second


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def _floor_command() -> str:
    (command,) = [c for c in _readme_commands() if "transformers==" in c]
    return command


def _lower_bound(requirement: str) -> Version:
    (bound,) = [s.version for s in Requirement(requirement).specifier if s.operator == ">="]
    return Version(bound)


def test_ci_also_runs_the_readme_floor_command_in_its_own_environment():
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    floor = _floor_command()
    assert floor in lines
    assert lines.index(floor) > lines.index("python3 -m venv .venv-ci-floor") > lines.index(_readme_commands()[1])
    assert floor.endswith("&& python -m pytest -q")  # the same suite as the newest environment


def test_floor_command_pins_exactly_the_declared_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {Requirement(r).name: r for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    pins = dict(re.findall(r"\b(transformers|peft)==([0-9.]+)", _floor_command()))
    assert set(pins) == {"transformers", "peft"}
    for name, version in pins.items():
        assert Version(version) == _lower_bound(declared[name]), name
    assert "<6" in str(Requirement(declared["transformers"]).specifier)  # closed above: 6 may break it


def test_console_script_and_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["promptlearn"] == "promptlearn.cli:main"
    assert {"dev", "demo"} <= set(project["optional-dependencies"])
    for dependency in ("torch", "transformers", "accelerate", "numpy", "scikit-learn", "jinja2", "tqdm",
                       "safetensors"):
        assert any(d.startswith(dependency) for d in project["dependencies"]), dependency
    # datasets.Dataset inputs are read by duck typing: the package is no dependency, and no module imports it when
    # loaded (promptlearn.io.hf_datasets imports it inside the functions that read hf:NAME specs and save_to_disk folders)
    assert not any(d.startswith("datasets") for d in project["dependencies"])
    sources = (ROOT / "promptlearn").rglob("*.py")
    assert not [p for p in sources if re.search(r"^(import|from) datasets\b", p.read_text(encoding="utf-8"), re.M)]
