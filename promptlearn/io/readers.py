"""Examples from data as users have it: generic files and datasets (CSV / TSV / JSON / JSON Lines / Parquet,
Hugging Face ``datasets``; the formats themselves are :mod:`promptlearn.io.tables` and
:mod:`promptlearn.io.hf_datasets`), data folders of any task (the task told by the files' columns), and
:func:`load_data`, the one entry point for the CLI, which also reads the shared data's tasks
(:mod:`promptlearn.io.tasks`); plus ``--head`` (first rows).

Every reader returns plain Python data, ``(examples, labels)``: ``examples`` is a list of dicts
of named text fields (``{"text": ...}``, ``{"premise": ..., "hypothesis": ...}``, ...) and
``labels`` a list of class names, or ``None`` when unlabelled.
This module imports neither torch nor transformers (nor pyarrow or datasets unless such data is
read), so it loads fast.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from .hf_datasets import HF_PREFIX, is_saved_dataset, read_hub, read_saved_dataset
from .tables import Table, read_file, split_aliases
from .tasks import (LMBFF_TASK_DIRS, NLI_FILES, Examples, Labels, fewglue_task, is_lmbff_folder, load_ag_news,
                    load_fewglue, load_lmbff, load_lmbff_task, load_nli, task_id)

__all__ = [
    "open_table",
    "read_examples",
    "read_table",
    "read_labelled_rows",
    "head_rows",
    "LABEL_COLUMNS",
    "TEXT_PAIRS",
    "infer_label_column",
    "infer_text_fields",
    "split_file",
    "load_data",
]

# --------------------------------------------------------------------------------------------
# Generic files and datasets (formats: promptlearn.io.tables, promptlearn.io.hf_datasets)
# --------------------------------------------------------------------------------------------


class _DefaultLabel(str):
    """Marks the default label column, so an explicitly requested one can be told apart."""


_LABEL = _DefaultLabel("label")

_head_rows: contextvars.ContextVar[int | None] = contextvars.ContextVar("promptlearn_head_rows", default=None)


@contextlib.contextmanager
def head_rows(n: int | None) -> Iterator[None]:
    """Within the block, every reader of this module returns only the first ``n`` rows (in file order) of each
    file, split or dataset it reads (``None``: all). This is how the CLI's ``--head`` reaches every read of a
    command; an explicit ``head=`` argument of a reader wins."""
    if n is not None and n < 0:
        raise DataError(f"head must be non-negative, got {n}")
    token = _head_rows.set(n)
    try:
        yield
    finally:
        _head_rows.reset(token)


def _head(head: int | None) -> int | None:
    if head is not None and head < 0:
        raise DataError(f"head must be non-negative, got {head}")
    return head if head is not None else _head_rows.get()


def read_examples(
    path: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    label_column: str | None = _LABEL,
    fmt: str | None = None,
    head: int | None = None,
    split: str | None = None,
) -> tuple[Examples, Labels]:
    """Read one table -- a CSV / TSV / JSON / JSON Lines / Parquet file, stdin for ``"-"``, a Hugging Face
    dataset ``hf:NAME[:CONFIG[:SPLIT]]`` or a folder saved by ``save_to_disk`` (``split`` picks one of several;
    see :mod:`promptlearn.io.tables`) -- into examples.

    ``columns`` maps field name -> column name (``{"text": "review"}``); without it every
    non-label column becomes a field of the same name. Labels come from ``label_column``
    (None, or the default "label" when absent, gives ``labels=None``). Empty cells stay "".
    ``head`` keeps the first rows only (default: :func:`head_rows`'s, else all).
    """
    table = open_table(path, split, fmt).head(_head(head))
    return _examples(table, columns, label_column)


def read_table(
    path: str | os.PathLike, *, columns: Mapping[str, str] | None = None, fmt: str | None = None,
    head: int | None = None, split: str | None = None,
) -> tuple[Examples, list[str], list[dict[str, Any]]]:
    """:func:`read_examples` without labels, with the file's columns (in order) and its rows: every column's
    value as in the file (JSON values keep their JSON types; a key a line lacks stays absent). For writing
    the input back out beside predictions."""
    table = open_table(path, split, fmt).head(_head(head))
    examples, _ = _examples(table, columns, None)
    return examples, table.header, table.rows


def _examples(table: Table, columns: Mapping[str, str] | None, label_column: str | None) -> tuple[Examples, Labels]:
    where, header, records, line_of, has_key = table.where, table.header, table.records, table.line_of, table.has_key
    explicit_label = label_column is not None and not isinstance(label_column, _DefaultLabel)
    labels: Labels = None
    if label_column is not None:
        if label_column in header:
            labels = []
            for i, rec in enumerate(records):
                if has_key is not None and label_column not in has_key[i]:
                    raise DataError(f"{where}, {table.unit} {line_of[i]}: no {label_column!r} key")
                labels.append(rec[label_column])
        elif explicit_label:
            raise DataError(
                f"{where} has no label column {label_column!r}; columns: {', '.join(header)}"
            )
    if columns:
        missing = [c for c in columns.values() if c not in header]
        if missing:
            raise DataError(f"{where} has no column(s) {missing}; columns: {', '.join(header)}")
        examples = [{field: rec[col] for field, col in columns.items() if col in rec} for rec in records]
    else:
        skip = label_column if labels is not None else None
        examples = [{k: v for k, v in rec.items() if k != skip} for rec in records]
    return examples, labels


def open_table(spec: str | os.PathLike, split: str | None = None, fmt: str | None = None) -> Table:
    """Any one table: a file (or ``-``), ``hf:NAME[:CONFIG[:SPLIT]]``, or a folder saved by ``save_to_disk``."""
    s = str(spec)
    if s.startswith(HF_PREFIX):
        return read_hub(s, split)
    if s != "-":
        path = Path(s).expanduser()
        if path.is_dir() and is_saved_dataset(path):
            return read_saved_dataset(path, split)
    return read_file(s, fmt)


# --------------------------------------------------------------------------------------------
# Tasks told by their columns (data folders of any task, Hugging Face datasets)
# --------------------------------------------------------------------------------------------

#: Label column names, in order of preference, when the label column is not named.
LABEL_COLUMNS = ("label", "labels", "target", "class", "y", "gold_label")

#: Columns that are never the text: identifiers and label names.
_NOT_TEXT = frozenset({"id", "idx", "index", "guid", "uid", "uuid", "example_id", "pair_id", "label_text",
                       "label_name", "label_names", "unnamed: 0"})

#: Two text columns that make a pair task: the columns (in order) -> the fields they become. Unnamed pairs
#: become premise / hypothesis, the fields of the shipped pair templates (rte/*, mnli/*, snli/*, cb/*).
TEXT_PAIRS: dict[tuple[str, str], tuple[str, str]] = {
    ("premise", "hypothesis"): ("premise", "hypothesis"),
    ("sentence1", "sentence2"): ("premise", "hypothesis"),
    ("sentence_a", "sentence_b"): ("premise", "hypothesis"),
    ("text_a", "text_b"): ("premise", "hypothesis"),
    ("text1", "text2"): ("premise", "hypothesis"),
    ("question1", "question2"): ("premise", "hypothesis"),
    ("question", "passage"): ("question", "passage"),
    ("question", "sentence"): ("question", "sentence"),
    ("question", "context"): ("question", "context"),
    ("title", "description"): ("title", "description"),
    ("title", "content"): ("title", "content"),
    ("title", "text"): ("title", "text"),
}

_DATA_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json", ".parquet")


def infer_label_column(header: Sequence[str], where: str = "the data", label_column: str | None = _LABEL) -> str | None:
    """The label column of a table: ``label_column`` when it is not the default "label"; else "label" if present,
    else the one column named labels / target / class / y / gold_label (any case; several: an error); None when
    there is none (unlabelled data) or ``label_column`` is None."""
    if label_column is None:
        return None
    if label_column != "label":
        return label_column
    if "label" in header:
        return "label"
    lowered = {c.lower(): c for c in header}
    found = [lowered[name] for name in LABEL_COLUMNS if name in lowered]
    if len(found) > 1:
        raise DataError(f"{where}: cannot tell the label column: {', '.join(found)} could each be it; "
                        "name it with --label-column")
    return found[0] if found else None


def infer_text_fields(header: Sequence[str], where: str = "the data", label: str | None = None) -> dict[str, str]:
    """The fields of a table whose task is not known, as field -> column: its one text column as ``text``, or two
    columns that make a known pair (:data:`TEXT_PAIRS`: sentence1/sentence2 -> premise/hypothesis, question/
    passage, ...); identifiers (id, idx, ...) and label columns are not text. Anything else is ambiguous: a
    :class:`DataError` listing the columns and the ``--column`` option that settles it."""
    candidates = [c for c in header if c != label and c.lower() not in _NOT_TEXT and c.lower() not in LABEL_COLUMNS]
    if len(candidates) == 1:
        return {"text": candidates[0]}
    if len(candidates) == 2:
        lowered = {c.lower(): c for c in candidates}
        for pair, fields in TEXT_PAIRS.items():
            if set(pair) == set(lowered):
                return {field: lowered[col] for field, col in zip(fields, pair)}
    described = f"columns {', '.join(header) or 'none'}" + (f" (label: {label})" if label else " (no label column)")
    if not candidates:
        raise DataError(f"{where}: no text column besides the label and identifiers: {described}; name it with "
                        "--column text=COLUMN")
    example = " ".join(f"--column {f}={c}" for f, c in zip(("premise", "hypothesis"), candidates)) \
        if len(candidates) == 2 else f"--column text={candidates[0]}"
    raise DataError(f"{where}: cannot tell which columns are the text: {described}; name the template's fields "
                    f"with --column FIELD=COLUMN (e.g. {example})")


def _inferred_examples(table: Table, columns: Mapping[str, str] | None, label_column: str | None
                       ) -> tuple[Examples, Labels]:
    """Examples of a table whose task is not known: label column and fields inferred unless given."""
    label = infer_label_column(table.header, table.where, label_column)
    mapping = dict(columns) if columns else infer_text_fields(table.header, table.where, label if label in
                                                              table.header else None)
    return _examples(table, mapping, label)


def split_file(folder: str | os.PathLike, split: str) -> Path:
    """The file of ``split`` in a data folder: ``<split>.tsv`` / ``.csv`` / ``.jsonl`` / ``.json`` /
    ``.parquet`` (dev also as validation, val, dev_matched, ...)."""
    folder = Path(folder)
    for name in split_aliases(split):
        found = [folder / f"{name}{ext}" for ext in _DATA_SUFFIXES if (folder / f"{name}{ext}").is_file()]
        if len(found) > 1:
            raise DataError(f"{folder} holds several files for split {split!r} ({', '.join(f.name for f in found)}); "
                            "keep one")
        if found:
            return found[0]
    have = sorted(f.name for f in folder.iterdir() if f.is_file() and f.suffix.lower() in _DATA_SUFFIXES)
    raise DataError(f"split {split!r} is not in {folder}: a data folder holds train / dev / test files "
                    f"({', '.join(_DATA_SUFFIXES)}); data files there: {', '.join(have) or 'none'}")


def read_labelled_rows(
    spec: str | os.PathLike,
    *,
    split: str | None = None,
    label_column: str | None = None,
    fmt: str | None = None,
    head: int | None = None,
) -> tuple[list[str], list[dict[str, Any]], list[str], str]:
    """Every column of labelled data, for writing a part of it back out: ``(header, rows, labels, label
    column)``; rows keep their values as read, labels are text (a Hugging Face ClassLabel: its class names).

    ``spec`` is anything :func:`read_examples` reads, or a data folder (``split``, default train; an LM-BFF
    folder gives its parsed fields and ``label``). ``label_column`` None: label, labels, target, class, y."""
    s = str(spec)
    path = Path(s).expanduser()
    if s != "-" and not s.startswith(HF_PREFIX) and path.is_dir() and not is_saved_dataset(path):
        if is_lmbff_folder(path):
            examples, lmbff_labels = load_lmbff(path, split or "train")
            n = _head(head)
            examples, given = examples[:n], list(lmbff_labels or [])[:n]
            header = list(dict.fromkeys(k for e in examples for k in e)) + ["label"]
            return header, [{**e, "label": y} for e, y in zip(examples, given)], given, "label"
        table = read_file(split_file(path, split or "train"))
    else:
        table = open_table(s, split, fmt)
    table = table.head(_head(head))
    label = infer_label_column(table.header, table.where, label_column or _LABEL)
    if label is None or label not in table.header:
        looked = f"looked for {', '.join(LABEL_COLUMNS)}" if label is None else repr(label)
        raise DataError(f"{table.where} has no label column ({looked}); columns: {', '.join(table.header) or 'none'}; "
                        "name it with --label-column")
    _, labels = _examples(table, {}, label)
    return table.header, table.rows, list(labels or []), label


# --------------------------------------------------------------------------------------------
# One entry point for the CLI
# --------------------------------------------------------------------------------------------


def load_data(
    spec: str | os.PathLike,
    split: str = "test",
    *,
    columns: Mapping[str, str] | None = None,
    label_column: str | None = _LABEL,
    fmt: str | None = None,
    verify: bool = True,
    head: int | None = None,
) -> tuple[Examples, Labels]:
    """Load data named by ``spec``: an LM-BFF k-shot folder, a FewGLUE task folder, the AG News
    folder, any other data folder of train / dev / test files (its task told by the columns: see
    :func:`infer_text_fields`), a data file (csv / tsv / json / jsonl / parquet, or "-" for stdin), a
    Hugging Face dataset (``hf:NAME[:CONFIG[:SPLIT]]``, or a folder saved by ``save_to_disk``; task told by
    the columns), or a task name such as ``sst2`` / ``sst2:21`` (LM-BFF seed 21), ``agnews``, ``boolq``;
    ``split`` picks the split of a folder, dataset or task. ``head`` keeps the first rows only (default:
    :func:`head_rows`'s, else all)."""
    n = _head(head)
    examples, labels = _load_data(spec, split, columns, label_column, fmt, verify, n)
    if n is not None and n < len(examples):
        examples, labels = examples[:n], (labels[:n] if labels is not None else None)
    return examples, labels


def _load_data(spec: str | os.PathLike, split: str, columns: Mapping[str, str] | None, label_column: str | None,
               fmt: str | None, verify: bool, head: int | None) -> tuple[Examples, Labels]:
    s = str(spec)
    if s == "-":
        return read_examples(s, columns=columns, label_column=label_column, fmt=fmt, head=head)
    if s.startswith(HF_PREFIX):
        return _inferred_examples(open_table(s, split).head(head), columns, label_column)
    p = Path(s).expanduser()
    if p.is_dir():
        if is_saved_dataset(p):
            return _inferred_examples(read_saved_dataset(p, split).head(head), columns, label_column)
        if p.parent.name == "superglue" and fewglue_task(p.name):
            return load_fewglue(p.name, split, root=p.parent.parent)
        if p.name == "ag_news" and (p / "train_pool.csv").is_file():
            return load_ag_news(split, root=p.parent)
        if is_lmbff_folder(p):
            return load_lmbff(p, split, verify=verify)
        return _inferred_examples(read_file(split_file(p, split)).head(head), columns, label_column)
    if p.is_file():
        if p.parent.name == "nli" and p.stem in NLI_FILES:
            return load_nli(p.stem, root=p.parent.parent)
        if p.parent.name == "ag_news" and p.stem in ("test", "train_pool"):
            return load_ag_news(p.stem, root=p.parent.parent)
        return read_examples(p, columns=columns, label_column=label_column, fmt=fmt, head=head)
    # a task name, optionally with an LM-BFF seed: "sst2", "SST-2:21"
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_\-]*)(?::(\d+))?", s)
    if not m:
        raise DataError(f"data file or folder not found: {p}")
    try:
        tid = task_id(m.group(1))
    except DataError:
        tid = None
    if tid in LMBFF_TASK_DIRS:
        return load_lmbff_task(tid, split, seed=int(m.group(2) or 13), verify=verify)
    if tid == "agnews":
        return load_ag_news(split)
    if tid in ("boolq", "cb"):
        return load_fewglue(tid, split)
    raise DataError(
        f"{s!r} is neither an existing file or folder nor a known task name "
        f"(e.g. sst2, sst2:21, agnews, boolq) nor a Hugging Face dataset (hf:NAME[:CONFIG[:SPLIT]])"
    )


