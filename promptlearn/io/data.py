"""Data readers for the CLI and benchmarks: LM-BFF k-shot folders (with checksums), AG News,
FewGLUE, the NLI test files, data folders of any task (the task told by the files' columns), and
generic files and datasets (CSV / TSV / JSON / JSON Lines / Parquet, Hugging Face ``datasets``; the
formats themselves are :mod:`promptlearn.io.tables`); plus ``--head`` (first rows) and seeded k-shot sampling.

Every reader returns plain Python data, ``(examples, labels)``: ``examples`` is a list of dicts
of named text fields (``{"text": ...}``, ``{"premise": ..., "hypothesis": ...}``, ...) and
``labels`` a list of class *names* (see :data:`TASK_LABELS`), or ``None`` when unlabelled.
This module imports neither torch nor transformers (nor pyarrow or datasets unless such data is
read), so it loads fast.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ChecksumError, DataError
from .tables import (HF_PREFIX, Table, _decode, _iter_jsonl, _parse_delimited, _physical_lines, _read_bytes,
                     _to_text, is_saved_dataset, open_table, read_file, read_saved_dataset, split_aliases)

__all__ = [
    "TASK_LABELS",
    "REGRESSION_TASKS",
    "LMBFF_TASK_DIRS",
    "task_id",
    "shared_data_root",
    "load_lmbff",
    "load_lmbff_task",
    "load_lmbff_full",
    "load_ag_news",
    "load_fewglue",
    "load_nli",
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
    "k_shot_indices",
    "sample_k_shot",
    "subsample",
]

logger = logging.getLogger(__name__)

Examples = list[dict[str, str]]
Labels = list[str] | None

# --------------------------------------------------------------------------------------------
# Tasks and their classes
# --------------------------------------------------------------------------------------------

#: Class names per normalised task id, in class-index order (index i = raw label i of the
#: source files). STS-B is a regression task: its "labels" are score strings, so no classes.
TASK_LABELS: dict[str, list[str]] = {
    "sst2": ["negative", "positive"],
    "sst5": ["very negative", "negative", "neutral", "positive", "very positive"],
    "mr": ["negative", "positive"],
    "cr": ["negative", "positive"],
    "subj": ["subjective", "objective"],
    # LM-BFF's 0..5 = DESC, ENTY, ABBR, HUM, LOC, NUM (checked against the test rows)
    "trec": ["description", "entity", "abbreviation", "human", "location", "number"],
    "cola": ["unacceptable", "acceptable"],
    "rte": ["entailment", "not_entailment"],
    "mnli": ["contradiction", "entailment", "neutral"],
    "snli": ["contradiction", "entailment", "neutral"],
    "stsb": [],
    "agnews": ["world", "sports", "business", "tech"],
    "boolq": ["false", "true"],
    "cb": ["contradiction", "entailment", "neutral"],
}

#: Tasks whose labels are real-valued scores (kept as strings), not class names.
REGRESSION_TASKS: frozenset[str] = frozenset({"stsb"})

#: Folder name of each task under ``lm-bff/k-shot`` and ``lm-bff/full``.
LMBFF_TASK_DIRS: dict[str, str] = {
    "sst2": "SST-2",
    "sst5": "sst-5",
    "mr": "mr",
    "cr": "cr",
    "subj": "subj",
    "trec": "trec",
    "cola": "CoLA",
    "rte": "RTE",
    "mnli": "MNLI",
    "snli": "SNLI",
    "stsb": "STS-B",
}

_ALIASES = {"ag": "agnews", "sts": "stsb", "sst": "sst2", "mnlim": "mnli", "mnlimatched": "mnli"}


def task_id(name: str) -> str:
    """Normalise a task name ("SST-2", "sst-5", "ag_news", "STS-B") to its id in TASK_LABELS."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    key = _ALIASES.get(key, key)
    if key not in TASK_LABELS:
        raise DataError(
            f"unknown task {name!r}; known tasks: {', '.join(sorted(TASK_LABELS))}"
        )
    return key


# --------------------------------------------------------------------------------------------
# Locating the shared data
# --------------------------------------------------------------------------------------------


def shared_data_root() -> Path:
    """The shared data folder: $PROMPTLEARN_DATA, else ../shared/data from the cwd or the repo."""
    env = os.environ.get("PROMPTLEARN_DATA")
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise DataError(f"PROMPTLEARN_DATA={env!r} is not a folder; point it at the shared data folder")
        return root
    candidates = [
        Path.cwd() / ".." / "shared" / "data",
        Path(__file__).resolve().parent.parent / ".." / "shared" / "data",
    ]
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"cannot find the shared data folder (tried {tried}); "
        "set PROMPTLEARN_DATA=/path/to/shared/data"
    )


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else shared_data_root()


# --------------------------------------------------------------------------------------------
# LM-BFF k-shot folders
# --------------------------------------------------------------------------------------------

_SINGLE = ("sst2", "sst5", "mr", "cr", "subj", "trec", "cola")
_HEADERLESS_CSV = ("sst5", "mr", "cr", "subj", "trec")


def _split_files(folder: Path) -> dict[str, Path]:
    """Map split name -> file for an LM-BFF folder (dev_matched is also reachable as dev)."""
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".tsv", ".csv"):
            out[f.stem] = f
    if "dev" not in out and "dev_matched" in out:
        out["dev"] = out["dev_matched"]
    return out


_checksum_cache: dict[tuple[Path, float], dict[str, str]] = {}


def _read_checksums(path: Path) -> dict[str, str]:
    key = (path, path.stat().st_mtime)
    if key not in _checksum_cache:
        sums: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                name = parts[1].strip().lstrip("*")
                if name.startswith("./"):
                    name = name[2:]
                sums[name] = parts[0].lower()
        _checksum_cache[key] = sums
    return _checksum_cache[key]


def _verify_md5(file: Path, raw: bytes) -> None:
    """Check ``file`` (LM-BFF layout TASK/k-seed/file) against the k-shot root's checksum file."""
    folder = file.parent
    checksum = folder.parent.parent / "checksum"
    if not checksum.is_file():
        logger.warning("no checksum file at %s; %s not verified", checksum, file)
        return
    rel = f"{folder.parent.name}/{folder.name}/{file.name}"
    expected = _read_checksums(checksum).get(rel)
    if expected is None:
        logger.warning("%s has no entry for %s; not verified", checksum, rel)
        return
    actual = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {file}: expected md5 {expected} (from {checksum}), got {actual}; "
            "the file is corrupt or was edited: restore the original LM-BFF data"
        )


def _class_name(tid: str, raw: str, where: str) -> str:
    """Raw label (index or name) -> class name, with a clear error (naming ``where``) otherwise."""
    names = TASK_LABELS[tid]
    raw = raw.strip()
    if raw in names:
        return raw
    if raw.isdigit() and int(raw) < len(names):
        return names[int(raw)]
    raise DataError(f"{where}: label {raw!r} is not one of {names} (task {tid})")


def load_lmbff(folder: str | os.PathLike, split: str = "test", *, verify: bool = True) -> tuple[Examples, Labels]:
    """Read one split of an LM-BFF k-shot folder (e.g. ``.../k-shot/SST-2/16-13``); the task is
    the parent folder's name. ``verify`` checks the file's md5 against ``k-shot/checksum``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"LM-BFF folder not found: {folder}")
    try:
        tid = task_id(folder.parent.name)
    except DataError:
        raise DataError(
            f"cannot tell the task of {folder}: its parent folder {folder.parent.name!r} is not an "
            f"LM-BFF task ({', '.join(LMBFF_TASK_DIRS.values())}); load_data reads other task folders by their "
            "columns"
        ) from None
    if tid not in LMBFF_TASK_DIRS:
        raise DataError(f"{folder}: {tid} is not an LM-BFF task")
    files = _split_files(folder)
    if split not in files:
        hint = ""
        if split == "test" and tid == "mnli":
            hint = " LM-BFF's MNLI test set is the full MNLI dev-matched set: use load_nli('mnli_dev_matched') (nli/mnli_dev_matched.jsonl)."
        elif split == "test" and tid == "snli":
            hint = " LM-BFF's SNLI test set is the full SNLI dev set: use load_nli('snli_dev') (nli/snli_dev.jsonl)."
        raise DataError(
            f"split {split!r} is not in {folder}; splits there: {', '.join(sorted(files)) or 'none'}.{hint}"
        )
    path = files[split]
    raw = _read_bytes(path)
    if verify:
        _verify_md5(path, raw)
    text = _decode(raw, path)
    return _parse_lmbff(tid, path, text)


def _parse_lmbff(tid: str, path: Path, text: str) -> tuple[Examples, list[str]]:
    has_header = tid not in _HEADERLESS_CSV and tid != "cola"
    if tid in _HEADERLESS_CSV:
        rows = _parse_delimited(text, ",", quoted=True, where=path)
    else:
        # GLUE-style TSV: quotes are literal characters, never field delimiters
        rows = _parse_delimited(text, "\t", quoted=False, where=path)
    n_lines = _physical_lines(text)
    if len(rows) != n_lines:
        raise DataError(
            f"{path}: parsed {len(rows)} rows from {n_lines} lines; the file is malformed (stray quotes?)"
        )
    first_line = 1
    if has_header:
        if not rows:
            raise DataError(f"{path} is empty; expected a header row")
        header, rows = rows[0], rows[1:]
        first_line = 2
        col = {name: i for i, name in enumerate(header)}
    examples: Examples = []
    labels: list[str] = []

    def need(names: Sequence[str]) -> list[int]:
        missing = [n for n in names if n not in col]
        if missing:
            raise DataError(f"{path}: header lacks column(s) {missing}; header is {header}")
        return [col[n] for n in names]

    if tid in _HEADERLESS_CSV:
        widths, (i_label, i_text) = {2}, (0, 1)
    elif tid == "cola":
        widths, (i_label, i_text) = {4}, (1, 3)
    elif tid == "sst2":
        widths = {len(header)}
        i_text, i_label = need(["sentence", "label"])
    elif tid == "rte":
        widths = {len(header)}
        i_a, i_b, i_label = need(["sentence1", "sentence2", "label"])
    elif tid in ("mnli", "snli"):
        # rows from the GLUE dev files carry label1..label5 (4 extra columns); gold_label is last
        widths = {len(header), len(header) + 4}
        i_a, i_b = need(["sentence1", "sentence2"])
        need(["gold_label"])
        i_label = -1
    elif tid == "stsb":
        widths = {len(header)}
        i_a, i_b, i_label = need(["sentence1", "sentence2", "score"])
    else:  # pragma: no cover - every LM-BFF task is handled above
        raise DataError(f"no reader for LM-BFF task {tid}")

    for n, row in enumerate(rows, start=first_line):
        if len(row) not in widths:
            raise DataError(
                f"{path}, line {n}: {len(row)} columns, expected {' or '.join(map(str, sorted(widths)))}"
            )
        if tid in _SINGLE:
            examples.append({"text": row[i_text]})
        elif tid == "stsb":
            examples.append({"sentence1": row[i_a], "sentence2": row[i_b]})
        else:
            examples.append({"premise": row[i_a], "hypothesis": row[i_b]})
        if tid == "stsb":
            score = row[i_label].strip()
            try:
                float(score)
            except ValueError:
                raise DataError(f"{path}, line {n}: score {score!r} is not a number") from None
            labels.append(score)
        else:
            labels.append(_class_name(tid, row[i_label], f"{path}, line {n}"))
    return examples, labels


def load_lmbff_task(
    task: str,
    split: str = "test",
    seed: int = 13,
    k: int = 16,
    root: str | os.PathLike | None = None,
    *,
    verify: bool = True,
) -> tuple[Examples, Labels]:
    """Read ``<root>/lm-bff/k-shot/<TASK>/<k>-<seed>/<split>``; ``root`` defaults to shared_data_root()."""
    tid = task_id(task)
    if tid not in LMBFF_TASK_DIRS:
        raise DataError(f"{task!r} is not an LM-BFF task; LM-BFF tasks: {', '.join(LMBFF_TASK_DIRS.values())}")
    base = _root(root) / "lm-bff" / "k-shot" / LMBFF_TASK_DIRS[tid]
    folder = base / f"{k}-{seed}"
    if not folder.is_dir():
        have = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise DataError(f"LM-BFF folder not found: {folder}; available: {', '.join(have) or 'none'}")
    return load_lmbff(folder, split, verify=verify)


def load_lmbff_full(task: str, split: str = "train", root: str | os.PathLike | None = None) -> tuple[Examples, Labels]:
    """Read LM-BFF's full training data (``lm-bff/full/<TASK>/{train,dev}``), e.g. as unlabelled text."""
    tid = task_id(task)
    if tid not in LMBFF_TASK_DIRS:
        raise DataError(f"{task!r} is not an LM-BFF task")
    folder = _root(root) / "lm-bff" / "full" / LMBFF_TASK_DIRS[tid]
    files = {p.stem: p for p in folder.glob("*") if p.suffix in (".tsv", ".json")} if folder.is_dir() else {}
    if split not in files:
        raise DataError(f"split {split!r} is not in {folder}; splits there: {', '.join(sorted(files)) or 'none'}")
    path = files[split]
    examples: Examples = []
    labels: list[str] = []
    if path.suffix == ".json":  # {"0": {"text_a", "text_b", "label"}, ...}
        try:
            data = json.loads(_decode(_read_bytes(path), path))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: bad JSON at line {exc.lineno}: {exc.msg}") from None
        a, b = ("sentence1", "sentence2") if tid == "stsb" else ("premise", "hypothesis")
        for key, rec in data.items():
            examples.append({a: rec["text_a"], b: rec["text_b"]})
            labels.append(str(rec["label"]) if tid == "stsb" else _class_name(tid, str(rec["label"]), f"{path}, record {key}"))
    else:  # sentence<TAB>label with CSV-style quoting
        rows = _parse_delimited(_decode(_read_bytes(path), path), "\t", quoted=True, where=path)
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != 2:
                raise DataError(f"{path}, row {n}: {len(row)} columns, expected 2")
            examples.append({"text": row[0]})
            labels.append(_class_name(tid, row[1], f"{path}, line {n}"))
    return examples, labels


# --------------------------------------------------------------------------------------------
# AG News, FewGLUE, NLI test files
# --------------------------------------------------------------------------------------------


def _read_csv_rows(path: Path) -> list[list[str]]:
    return _parse_delimited(_decode(_read_bytes(path), path), ",", quoted=True, where=path)


def load_ag_news(split: str = "test", root: str | os.PathLike | None = None) -> tuple[Examples, Labels]:
    """Read AG News ``test`` (7,600) or ``train_pool`` (8,000, no titles) as title/description
    fields; backslashes (the corpus's stand-in for newlines) become spaces, as in PET."""
    if split not in ("test", "train_pool"):
        raise DataError(f"AG News split {split!r} unknown; splits: test, train_pool")
    path = _root(root) / "ag_news" / f"{split}.csv"
    rows = _read_csv_rows(path)
    if not rows:
        raise DataError(f"{path} is empty")
    width = 3 if split == "test" else 2
    names = TASK_LABELS["agnews"]
    examples: Examples = []
    labels: list[str] = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise DataError(f"{path}, line {n}: {len(row)} columns, expected {width} ({rows[0]})")
        raw = row[0].strip()
        if not (raw.isdigit() and 1 <= int(raw) <= 4):
            raise DataError(f"{path}, line {n}: label {raw!r} is not 1..4")
        labels.append(names[int(raw) - 1])
        title = row[1] if width == 3 else ""
        examples.append({"title": title.replace("\\", " "), "description": row[-1].replace("\\", " ")})
    return examples, labels


_FEWGLUE_DIRS = {"boolq": "BoolQ", "cb": "CB", "rte": "RTE"}


def load_fewglue(task: str, split: str, root: str | os.PathLike | None = None) -> tuple[Examples, Labels]:
    """Read a FewGLUE_32dev split (train, dev32, val, unlabeled) of BoolQ (question, passage),
    CB or RTE (premise, hypothesis); BoolQ's boolean label becomes "false" / "true"."""
    tid = task_id(task)
    if tid not in _FEWGLUE_DIRS:
        raise DataError(f"FewGLUE task {task!r} not supported; supported: BoolQ, CB, RTE")
    folder = _root(root) / "superglue" / _FEWGLUE_DIRS[tid]
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []
        raise DataError(f"split {split!r} not found ({path}); splits there: {', '.join(have) or 'none'}")
    fields = ("question", "passage") if tid == "boolq" else ("premise", "hypothesis")
    examples: Examples = []
    labels: list[str] = []
    unlabelled = False
    for n, rec in _iter_jsonl(path):
        missing = [f for f in fields if f not in rec]
        if missing:
            raise DataError(f"{path}, line {n}: missing field(s) {missing}")
        examples.append({f: _to_text(rec[f]) for f in fields})
        lab = rec.get("label")
        if lab is None:
            unlabelled = True
            continue
        labels.append(_class_name(tid, _to_text(lab).lower() if tid == "boolq" else _to_text(lab), f"{path}, line {n}"))
    if unlabelled:
        if labels:
            raise DataError(f"{path}: some lines have a label and some do not")
        return examples, None
    return examples, labels


_NLI_FILES = {
    "mnli_dev_matched": "mnli_dev_matched.jsonl",
    "snli_dev": "snli_dev.jsonl",
    "snli_test": "snli_test.tsv",
}
_SNLI_TEST_LABELS = {"0": "entailment", "1": "neutral", "2": "contradiction"}


def load_nli(name: str, root: str | os.PathLike | None = None) -> tuple[Examples, Labels]:
    """Read an NLI evaluation file from ``nli/`` (mnli_dev_matched, snli_dev, snli_test) as
    premise/hypothesis with label names; LM-BFF's MNLI/SNLI test sets are the first two."""
    key = Path(str(name)).name
    for ext in (".jsonl", ".tsv"):
        key = key.removesuffix(ext)
    if key not in _NLI_FILES:
        raise DataError(f"unknown NLI file {name!r}; known: {', '.join(_NLI_FILES)}")
    path = _root(root) / "nli" / _NLI_FILES[key]
    tid = "mnli" if key.startswith("mnli") else "snli"
    examples: Examples = []
    labels: list[str] = []
    if path.suffix == ".jsonl":
        for n, rec in _iter_jsonl(path):
            examples.append({"premise": _to_text(rec.get("premise")), "hypothesis": _to_text(rec.get("hypothesis"))})
            labels.append(_class_name(tid, str(rec.get("label")), f"{path}, line {n}"))
    else:  # snli_test.tsv: premise, hypothesis, label with CSV-style quoting; 0/1/2 = E/N/C
        rows = _parse_delimited(_decode(_read_bytes(path), path), "\t", quoted=True, where=path)
        if not rows or rows[0] != ["premise", "hypothesis", "label"]:
            raise DataError(f"{path}: expected header premise, hypothesis, label")
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != 3 or row[2].strip() not in _SNLI_TEST_LABELS:
                raise DataError(f"{path}, line {n}: expected premise, hypothesis, label in 0/1/2; got {row!r}")
            examples.append({"premise": row[0], "hypothesis": row[1]})
            labels.append(_SNLI_TEST_LABELS[row[2].strip()])
    return examples, labels


# --------------------------------------------------------------------------------------------
# Generic files and datasets (formats: promptlearn.io.tables)
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


def _is_lmbff_folder(folder: Path) -> bool:
    """Whether ``folder`` is laid out as LM-BFF's (TASK/K-SEED/split.tsv|csv with TASK an LM-BFF task)."""
    try:
        tid = task_id(folder.parent.name)
    except DataError:
        return False
    return tid in LMBFF_TASK_DIRS and any(f.suffix in (".tsv", ".csv") for f in folder.iterdir() if f.is_file())


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
        if _is_lmbff_folder(path):
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
        if p.parent.name == "superglue" and _fewglue_task(p.name):
            return load_fewglue(p.name, split, root=p.parent.parent)
        if p.name == "ag_news" and (p / "train_pool.csv").is_file():
            return load_ag_news(split, root=p.parent)
        if _is_lmbff_folder(p):
            return load_lmbff(p, split, verify=verify)
        return _inferred_examples(read_file(split_file(p, split)).head(head), columns, label_column)
    if p.is_file():
        if p.parent.name == "nli" and p.stem in _NLI_FILES:
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


def _fewglue_task(name: str) -> str | None:
    try:
        tid = task_id(name)
    except DataError:
        return None
    return tid if tid in _FEWGLUE_DIRS else None


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def k_shot_indices(labels: Sequence[str], k: int, seed: int, *, strict: bool = True) -> list[int]:
    """The positions of ``k`` examples per class, drawn with a seeded numpy Generator, in original order
    (ascending). A class with fewer than ``k`` examples is an error unless ``strict=False`` (take all)."""
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    short = {c: n for c, n in counts.items() if n < k}
    if short and strict:
        raise DataError(f"fewer than k={k} examples for class(es) {short}; pass strict=False to take them all")
    rng = np.random.default_rng(seed)
    taken: dict[str, int] = {c: 0 for c in counts}
    chosen: list[int] = []
    for i in rng.permutation(len(labels)).tolist():
        lab = labels[i]
        if taken[lab] < k:
            taken[lab] += 1
            chosen.append(i)
    chosen.sort()
    return chosen


def sample_k_shot(
    examples: Sequence[Mapping[str, str]],
    labels: Sequence[str] | None,
    k: int,
    seed: int,
    *,
    strict: bool = True,
) -> tuple[Examples, list[str]]:
    """Pick ``k`` examples per class with a seeded numpy Generator; the picks keep their original
    order. A class with fewer than ``k`` examples is an error unless ``strict=False`` (take all).
    (:func:`k_shot_indices` gives the positions.)"""
    if labels is None:
        raise DataError("sample_k_shot needs labels")
    if len(examples) != len(labels):
        raise DataError(f"{len(examples)} examples but {len(labels)} labels")
    chosen = k_shot_indices(labels, k, seed, strict=strict)
    return [dict(examples[i]) for i in chosen], [labels[i] for i in chosen]


def subsample(
    examples: Sequence[Mapping[str, str]],
    labels: Sequence[str] | None,
    n: int,
    seed: int,
) -> tuple[Examples, Labels]:
    """A fixed seeded subset of ``n`` examples in original order (a prefix of one seeded
    permutation, so smaller n with the same seed gives a subset); n >= len returns all."""
    if labels is not None and len(examples) != len(labels):
        raise DataError(f"{len(examples)} examples but {len(labels)} labels")
    if n < 0:
        raise DataError(f"n must be non-negative, got {n}")
    if n >= len(examples):
        return [dict(e) for e in examples], (list(labels) if labels is not None else None)
    idx = sorted(np.random.default_rng(seed).permutation(len(examples))[:n].tolist())
    return [dict(examples[i]) for i in idx], ([labels[i] for i in idx] if labels is not None else None)
