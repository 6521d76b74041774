"""Same command twice: recompute finished benchmark cells in a scratch folder and compare them with the
result files on disk, every key both files hold but ``timing``. Keys that only one file holds (a cell written
before the runner recorded them) are listed apart and are not a difference.

Run:   python -m benchmarks.reproduce CONFIG [--only METHOD ...] [--tasks TASK ...] [--k K ...] [--seeds SEED ...]

Every selected cell must already be finished (``python -m benchmarks.run CONFIG`` first). The rerun goes
through ``benchmarks.run --force`` into a temporary folder, so the files on disk are never touched. The
outcome, one record per cell, is merged into ``<results>/reproducibility/<config name>.json``;
``python -m benchmarks.report`` puts it in RESULTS.md. Exit status 0 when every cell matched, 1 when one
differed (the differing keys are printed), 2 for a bad selection.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import run
from benchmarks.common import environment
from benchmarks.runner.config import load_config, plan
from benchmarks.runner.table import write_json
from promptlearn.core.errors import PromptlearnError

SELECTION = ("only", "tasks", "k", "seeds")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a TOML config whose selected cells are finished")
    parser.add_argument("--only", nargs="+", metavar="METHOD", help="these methods (by name)")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="these (training) tasks")
    parser.add_argument("--k", nargs="+", type=int, metavar="K", help="these K")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="these seeds")
    parser.add_argument("--results-dir", type=Path, default=run.RESULTS, help="where the finished cells are")
    return parser


def _selection_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for name in SELECTION:
        values = getattr(args, name)
        if values:
            out += [f"--{name}", *map(str, values)]
    return out


def differing_keys(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Top-level keys that both result files hold with different values, ``timing`` aside."""
    return sorted(k for k in (set(first) & set(second)) - {"timing"} if first[k] != second[k])


def unshared_keys(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Top-level keys only one of the two files holds (a cell written by an older or newer runner)."""
    return sorted(set(first) ^ set(second))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        units = run._select(plan(config), config, args)
    except PromptlearnError as exc:
        return run._error(str(exc))
    folder = args.results_dir / config.name
    paths = [p for unit in units for p in unit.paths(folder)]
    missing = [p for p in paths if not p.is_file()]
    if not paths or missing:
        what = f"{len(missing)} of the {len(paths)} selected cells are not finished, e.g. {missing[0]}" if missing \
            else "the selection holds no cell"
        return run._error(f"{what}; run `python -m benchmarks.run {args.config}` first or narrow the selection")

    selection = _selection_args(args)
    command = shlex.join(["python", "-m", "benchmarks.reproduce", args.config, *selection])
    with tempfile.TemporaryDirectory(prefix="promptlearn-reproduce-") as scratch:
        code = run.main([args.config, "--force", "--results-dir", scratch, *selection])
        if code != 0:
            return run._error(f"the rerun failed (exit status {code}); see above")
        records = []
        for path in paths:
            first = json.loads(path.read_text(encoding="utf-8"))
            second = json.loads((Path(scratch) / path.relative_to(args.results_dir)).read_text(encoding="utf-8"))
            keys, unshared = differing_keys(first, second), unshared_keys(first, second)
            records.append({
                "cell": path.relative_to(folder).as_posix(), "identical": not keys, "differing_keys": keys,
                "unshared_keys": unshared,
                "accuracy": [first["accuracy"], second["accuracy"]],
                "seconds": [first["timing"]["seconds"], second["timing"]["seconds"]], "command": command,
            })
            print(f"{'same' if not keys else 'DIFFERS':7} {records[-1]['cell']}: accuracy "
                  f"{first['accuracy']:.6f} / {second['accuracy']:.6f}"
                  + (f"; differing keys: {', '.join(keys)}" if keys else "")
                  + (f"; in one file only: {', '.join(unshared)}" if unshared else ""), file=sys.stderr)

    target = args.results_dir / "reproducibility" / f"{config.name}.json"
    previous = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {"cells": []}
    merged = {r["cell"]: r for r in previous["cells"]} | {r["cell"]: r for r in records}
    write_json(target, {
        "config": config.name,
        "environment": environment(),
        "cells": [merged[c] for c in sorted(merged)],
    })
    same = sum(r["identical"] for r in records)
    print(f"{same} of {len(records)} cells identical apart from timing; wrote {target}", file=sys.stderr)
    return 0 if same == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
