"""`python -m promptlearn` and `python -m promptlearn.cli` run the command (as `accelerate launch -m` needs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import promptlearn
from promptlearn.cli.parser import _version


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(promptlearn.__file__).resolve().parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["promptlearn", "promptlearn.cli"])
def test_module_entry_points_print_the_version(module):
    result = _run("-m", module, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"promptlearn {_version()}"


def test_module_entry_point_runs_a_command_and_reports_errors():
    result = _run("-m", "promptlearn", "templates")
    assert result.returncode == 0, result.stderr
    assert "sst2/it_was" in result.stdout
    result = _run("-m", "promptlearn", "classify", "--model", "x", "--template", "{{ text }} [MASK]",
                  "--verbalizer", "v.json", "--text", "a", "--input", "b.csv")
    assert result.returncode == 2 and "promptlearn: error:" in result.stderr
