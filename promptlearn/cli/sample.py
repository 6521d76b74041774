"""``sample``: K labelled examples per class from a data file, written with every column (seeded, atomic)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..core.errors import DataError


def run_sample(args: argparse.Namespace) -> int:
    """Draw ``--k`` rows per class (seed ``--seed``; rows keep their order and every column, values as read) from
    ``--input`` and write them to ``--output`` in the format of its suffix, replacing it atomically (it may be
    ``--input``). A class with fewer than K rows is an error unless ``--allow-fewer`` (all of its rows taken)."""
    from ..io.readers import read_labelled_rows
    from ..io.tables import format_of, write_table

    try:
        format_of(args.output)  # a bad output suffix is reported before anything is read
    except DataError:
        raise DataError(f"--output {args.output}: cannot tell the format from its extension; use .csv, .tsv, .json, "
                        ".jsonl or .parquet") from None
    header, rows, labels, label_column = read_labelled_rows(args.input, split=args.split,
                                                            label_column=args.label_column, fmt=args.fmt,
                                                            head=args.head)
    if not rows:
        raise DataError(f"{args.input} has no rows to sample from")
    picked = k_per_class(labels, args.k, args.seed, where=str(args.input), label_column=label_column,
                         allow_fewer=args.allow_fewer)
    write_table(args.output, header, [rows[i] for i in picked])
    per_class = Counter(labels[i] for i in picked)
    classes = ", ".join(f"{c}: {n}" for c, n in sorted(per_class.items()))
    print(f"promptlearn: sampled {len(picked)} of {len(rows)} rows (per class of {label_column!r}: {classes}; "
          f"seed {args.seed}) -> {args.output}", file=sys.stderr)
    return 0


def k_per_class(labels: Sequence[Any], k: int, seed: int, *, where: str, label_column: str | None = None,
                allow_fewer: bool = False, fix: str = "lower --k, or pass --allow-fewer to take all of their rows"
                ) -> list[int]:
    """The positions of K rows per class (seeded; ascending), the one draw of `promptlearn sample` and
    `promptlearn train --k`, so that both pick the same rows of the same data with the same seed. A class with
    fewer than K rows is a one-line :class:`DataError` naming it and ending with ``fix``, unless ``allow_fewer``
    (all of its rows are taken)."""
    from ..io.sampling import k_shot_indices

    labels = [str(label) for label in labels]
    short = {c: n for c, n in sorted(Counter(labels).items()) if n < k}
    if short and not allow_fewer:
        shown = ", ".join(f"{c!r}: {n}" for c, n in short.items())
        column = f" (label column {label_column!r})" if label_column else ""
        raise DataError(f"{where}: fewer than --k {k} rows of class(es) {shown}{column}; {fix}")
    return k_shot_indices(labels, k, seed, strict=False)
