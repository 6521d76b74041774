"""The ``promptlearn`` command: ``classify``, ``evaluate``, ``train``, ``adapt``, ``search``, ``sample``, ``templates``.

``parser`` builds the options of every subcommand (the global ones, such as ``-v`` and ``-q``, are accepted before
or after the verb); ``predict`` runs classify / evaluate, ``templates`` lists or shows the shipped templates, ``train``
runs train / adapt / search, ``sample`` draws K examples per class from a file. ``labels`` reads the data's labels
as classes (``--label-map``); ``diagnostics`` warns when the predictions collapse onto one class.

Errors the user can fix are printed as one line (no traceback) and exit with status 2.

Under ``accelerate launch`` / ``torchrun`` every process runs the command: training splits each batch, scoring
splits the examples (rows come back in input order), and only the main process logs, prints and writes files.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import PromptlearnError
from .parser import build_parser
from .predict import default_verbalizer

__all__ = ["build_parser", "default_verbalizer", "main"]


# Commands that only read and write files (no model): they import neither torch nor transformers (~3.5 s of a start
# on 2 cores: `promptlearn templates` took 3.7-4.4 s, now 0.3-0.5 s) and join no process group.
FILE_COMMANDS = ("templates", "sample")


def _configure_logging(verbosity: int, main_process: bool = True, quiet: bool = False, models: bool = True) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    if not main_process:  # several processes: the main process logs, the others report errors only
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not models:  # transformers is not imported for a command that loads no model
        return
    try:
        import transformers

        transformers.utils.logging.set_verbosity(logging.ERROR if verbosity == 0 else level)
        if not sys.stderr.isatty() or not main_process or quiet:
            transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from ..models.distributed import ProcessInfo, setup

    models = args.command not in FILE_COMMANDS
    # joins the process group when launched as one of several (accelerate launch, torchrun)
    process = setup() if models else ProcessInfo()
    _configure_logging(args.verbose, process.is_main_process, quiet=getattr(args, "quiet", False), models=models)
    if process.num_processes > 1 and process.is_main_process:
        logging.getLogger("promptlearn").info("%d processes: each takes a slice of every batch and of the examples "
                                              "scored; this one (the main process) writes the results",
                                              process.num_processes)
    from ..io.readers import head_rows

    with head_rows(getattr(args, "head", None)):  # --head: every data reader of the command keeps the first N rows
        return _run(args.run, args)


def _run(command: Callable[[Any], int], argument: Any) -> int:
    """``command(argument)``, with the errors a user can fix printed as one line (exit status 2)."""
    try:
        return command(argument)
    except PromptlearnError as exc:
        print(f"promptlearn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("promptlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
