"""Reproducible few-shot benchmark runner: methods x tasks x K x seeds, named by a TOML config.

Run:   python -m benchmarks.run benchmarks/configs/lmbff_k16_minilm.toml
         [--force] [--only METHOD ...] [--tasks TASK ...] [--k K ...] [--seeds SEED ...]
         [--dry-run] [--table-only] [--results-dir DIR]
Then:  python -m benchmarks.report        (regenerates benchmarks/RESULTS.md, tables included)

Before any cell runs, the md5 of every LM-BFF k-shot file the selected cells read is checked against
``lm-bff/k-shot/checksum``; a mismatch stops the run with a message naming the file. Each cell (method,
task, K, seed) writes ``<results>/<config name>/<method>/<task>-k<K>-s<seed>.json`` atomically (sorted
keys, floats rounded to 6 digits; every wall-clock figure sits under ``timing``, so two runs of a cell give
byte-identical files apart from that key). A cell whose JSON exists is skipped unless ``--force``, so an
interrupted run resumes where it stopped. Then ``table.md`` (mean (std) x100 over the seeds) and, for a K
sweep, ``k_sweep.png`` are written from all the JSON files of the config.

Config format (TOML): see benchmarks/README.md and benchmarks/configs/*.toml.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import RESULTS
from benchmarks.runner.config import BENCH_HINT, REPO, Config, Unit, load_config, plan
from benchmarks.runner.data import DataSource, verify_checksums
from benchmarks.runner.kinds import Runner, Skip, resolve_model
from benchmarks.runner.table import render_table, write_json, write_plot, write_text
from promptlearn.io import tasks as ptasks
from promptlearn.core.errors import ConfigError, DataError, PromptlearnError

# ----------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------


def _display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path.resolve())


def _select(units: list[Unit], config: Config, args: argparse.Namespace) -> list[Unit]:
    names = {m.name for m in config.methods}
    if args.only:
        bad = sorted(set(args.only) - names)
        if bad:
            raise ConfigError(f"--only: {bad} not among the config's methods ({', '.join(sorted(names))})")
        units = [u for u in units if u.method.name in args.only]
    if args.tasks:
        try:
            wanted = {ptasks.task_id(t) for t in args.tasks}
        except DataError as exc:
            raise ConfigError(f"--tasks: {exc}") from None
        bad = sorted(wanted - set(config.tasks))
        if bad:
            raise ConfigError(f"--tasks: {bad} not among the config's tasks ({', '.join(config.tasks)})")
        units = [u for u in units if u.task in wanted]
    if args.k:
        bad = sorted(set(args.k) - set(config.ks))
        if bad:
            raise ConfigError(f"--k: {bad} not among the config's K ({config.ks})")
        units = [u for u in units if u.seed is None or u.k in args.k]
    if args.seeds:
        bad = sorted(set(args.seeds) - set(config.seeds))
        if bad:
            raise ConfigError(f"--seeds: {bad} not among the config's seeds ({config.seeds})")
        units = [u for u in units if u.seed is None or u.seed in args.seeds]
    return units


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a TOML config, e.g. benchmarks/configs/k_sweep.toml")
    parser.add_argument("--force", action="store_true", help="recompute the selected cells even if their JSON exists")
    parser.add_argument("--only", nargs="+", metavar="METHOD", help="run only these methods (by name)")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="run only these (training) tasks")
    parser.add_argument("--k", nargs="+", type=int, metavar="K", help="run only these K (zero-shot cells have none)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="run only these seeds")
    parser.add_argument("--table-only", action="store_true",
                        help="rewrite table.md (and the K-sweep plot) from the result files on disk; run nothing")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config, the data checksums and the models; list the cells; run nothing")
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help=f"where results go (default: {_display_path(RESULTS)})")
    return parser


def _error(message: str) -> int:
    print(f"benchmarks.run: error: {message}", file=sys.stderr)
    return 2


def _write_table(config: Config, results: Path, config_arg: str, skipped: dict[str, str]) -> Path:
    """table.md (and, for a K sweep, k_sweep.png) from every result file of the config on disk."""
    table_command = f"python -m benchmarks.run {shlex.quote(config_arg)}"
    plot_note = write_plot(config, results) if len(config.ks) > 1 else None
    table = render_table(config, results, command=table_command, skipped=skipped, plot_note=plot_note)
    target = results / config.name / "table.md"
    write_text(target, table)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Run the config named in ``argv``."""
    args = _parser("python -m benchmarks.run").parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        root = config.data_root or ptasks.shared_data_root()
        if not root.is_dir():
            raise DataError(f"data_root {root} is not a folder")
        source = DataSource(root)
        units = _select(plan(config), config, args)
        files = [f for unit in units for f in source.kshot_files(unit)]
        checked = verify_checksums(files)
    except PromptlearnError as exc:
        return _error(str(exc))
    results = args.results_dir
    folder = results / config.name
    if args.table_only:
        target = _write_table(config, results, _display_path(Path(args.config)), {})
        print(f"wrote {target} from the result files on disk (nothing run)", file=sys.stderr)
        return 0
    todo = [u for u in units if args.force or not all(p.is_file() for p in u.paths(folder))]
    done = len(units) - len(todo)
    skipped: dict[str, str] = {}
    problems = []
    for model in sorted({config.model_for(u.method) for u in todo if u.method.kind not in ("tfidf", "setfit")}
                        - {None}):
        try:
            resolve_model(model)
        except PromptlearnError as exc:
            problems.append(f"{exc} (the comments in {args.config} say how to make it)")
    if problems and not args.dry_run:
        return _error(problems[0])
    for method in {u.method.name: u.method for u in todo if u.method.kind == "setfit"}.values():
        try:
            import setfit  # noqa: F401
        except ImportError:
            skipped[method.name] = f"setfit is not installed; install it with {BENCH_HINT}"
            continue
        try:
            resolve_model(config.model_for(method))
        except PromptlearnError as exc:
            skipped[method.name] = str(exc)
    unavailable = sum(u.method.name in skipped for u in todo)
    print(f"{config.name}: {len(units)} units selected ({done} finished, {len(todo) - unavailable} to run"
          + (f", {unavailable} unavailable" if unavailable else "")
          + f"); {checked} LM-BFF files match their md5; data: {root}", file=sys.stderr)
    if args.dry_run:
        for unit in units:
            state = ("done" if unit not in todo else "skip" if unit.method.name in skipped else "todo")
            print(f"{state:5} {unit.label()}")
        for name, why in skipped.items():
            print(f"note: {name} will be skipped: {why}")
        for problem in problems:
            print(f"benchmarks.run: error: {problem}", file=sys.stderr)
        return 2 if problems else 0

    config_arg = _display_path(Path(args.config))
    runner = Runner(config, source, results, config_arg)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # expected warnings (new heads, unused LM heads) would drown the log
    failures: list[str] = []
    ran = 0
    runnable = [u for u in todo if u.method.name not in skipped]
    for number, unit in enumerate(runnable, start=1):
        print(f"[{number}/{len(runnable)}] {unit.label()}", file=sys.stderr, flush=True)
        try:
            cell_results = runner.run(unit)
        except KeyboardInterrupt:
            print(f"interrupted; {ran} units finished in this run are saved: run the same command again to "
                  "resume", file=sys.stderr)
            return 130
        except Skip as exc:
            skipped[unit.method.name] = str(exc)
            print(f"    skipped: {exc}", file=sys.stderr)
            continue
        except PromptlearnError as exc:
            failures.append(f"{unit.label()}: {exc}")
            print(f"    FAILED: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # keep going: the other cells are still worth having
            failures.append(f"{unit.label()}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            continue
        for path, result in zip(unit.paths(folder), cell_results):
            write_json(path, result)
            print(f"    {result['method']} {result['test_task']}: accuracy {100 * result['accuracy']:.1f} "
                  f"({result['timing']['seconds']:.1f} s) -> {path}", file=sys.stderr)
        checkpoint = runner._checkpoint_dir(unit)
        if checkpoint is not None and checkpoint.exists():
            shutil.rmtree(checkpoint, ignore_errors=True)
        ran += 1
    for name in [n for n in skipped]:
        print(f"skipped {name}: {skipped[name]}", file=sys.stderr)

    _write_table(config, results, config_arg, skipped)
    print(f"ran {ran}, skipped {done} finished and {len(todo) - ran - len(failures)} unavailable, "
          f"{len(failures)} failed; wrote {folder / 'table.md'}", file=sys.stderr)
    if failures:
        print("failed cells:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
