"""``promptlearn bench CONFIG ...``: the benchmark runner (``python -m benchmarks.run``) under the CLI.

The runner and its configs live in ``benchmarks/`` of a source checkout, not in the installed wheel, so
this forwards every argument to it when it can be imported and says how to get it when it cannot.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..errors import PromptlearnError

PROG = "promptlearn bench"


def run_bench_args(argv: Sequence[str]) -> int:
    """Run ``benchmarks.run`` with ``argv`` (its own options; ``--help`` lists them)."""
    try:
        from benchmarks.run import main as runner_main
    except ImportError as exc:
        raise PromptlearnError(
            f"{PROG} needs the benchmark suite of a source checkout ({exc}): clone the promptlearn repository, "
            "`pip install -e '.[bench]'` in it and run the command from its root "
            "(`python -m benchmarks.run CONFIG` is the same command)") from exc
    return runner_main(list(argv), prog=PROG)


def run_bench(args: argparse.Namespace) -> int:
    return run_bench_args(args.runner_args)
