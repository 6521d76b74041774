"""Packaging facts a fresh checkout relies on: the README's commands, .ci/run, the console script."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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


def test_console_script_and_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["promptlearn"] == "promptlearn.cli:main"
    assert {"dev", "demo"} <= set(project["optional-dependencies"])
    for dependency in ("torch", "transformers", "datasets", "numpy", "scikit-learn", "jinja2", "tqdm", "safetensors"):
        assert any(d.startswith(dependency) for d in project["dependencies"]), dependency
