"""The ``promptlearn`` command: ``classify``, ``evaluate``, ``train``, ``adapt``, ``search``, ``list``.

``parser`` builds the options of every subcommand; ``predict`` runs classify / evaluate / list, ``train`` runs
train / adapt / search.

Errors the user can fix are printed as one line (no traceback) and exit with status 2.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..errors import PromptlearnError
from .parser import build_parser
from .predict import default_verbalizer

__all__ = ["build_parser", "default_verbalizer", "main"]


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        import transformers

        transformers.utils.logging.set_verbosity(logging.ERROR if verbosity == 0 else level)
        if not sys.stderr.isatty():
            transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except PromptlearnError as exc:
        print(f"promptlearn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("promptlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
