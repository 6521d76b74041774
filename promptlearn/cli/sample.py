"""``sample``: K labelled examples per class from a data file, written with every column (seeded, atomic)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from ..core.errors import DataError


def run_sample(args: argparse.Namespace) -> int:
    """Draw ``--k`` rows per class (seed ``--seed``; rows keep their order and every column, values as read) from
    ``--input`` and write them to ``--output`` in the format of its suffix, replacing it atomically (it may be
    ``--input``). A class with fewer than K rows is an error unless ``--allow-fewer`` (all of its rows taken)."""
    from ..io.readers import read_labelled_rows
    from ..io.sampling import k_shot_indices
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
    counts = Counter(labels)
    short = {c: n for c, n in sorted(counts.items()) if n < args.k}
    if short and not args.allow_fewer:
        shown = ", ".join(f"{c!r}: {n}" for c, n in short.items())
        raise DataError(f"{args.input}: fewer than --k {args.k} rows of class(es) {shown} (label column "
                        f"{label_column!r}); lower --k, or pass --allow-fewer to take all of their rows")
    picked = k_shot_indices(labels, args.k, args.seed, strict=False)
    write_table(args.output, header, [rows[i] for i in picked])
    per_class = Counter(labels[i] for i in picked)
    classes = ", ".join(f"{c}: {n}" for c, n in sorted(per_class.items()))
    print(f"promptlearn: sampled {len(picked)} of {len(rows)} rows (per class of {label_column!r}: {classes}; "
          f"seed {args.seed}) -> {args.output}", file=sys.stderr)
    return 0
