"""The benchmark tasks and the shared data folder: each task's classes (:data:`TASK_LABELS`) and id, where the
shared data lives, and the readers of its files -- LM-BFF k-shot folders (with checksums), LM-BFF's full
training data, AG News, FewGLUE and the NLI test files.

Every reader returns plain Python data, ``(examples, labels)``: ``examples`` is a list of dicts
of named text fields (``{"text": ...}``, ``{"premise": ..., "hypothesis": ...}``, ...) and
``labels`` a list of class *names* (see :data:`TASK_LABELS`), or ``None`` when unlabelled.
Data of any other task is read by :mod:`promptlearn.io.readers`. This module imports neither torch nor
transformers, so it loads fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import ChecksumError, DataError
from .tables import decode_text, iter_jsonl, parse_delimited, physical_lines, read_bytes, to_text

__all__ = [
    "TASK_LABELS",
    "REGRESSION_TASKS",
    "LMBFF_TASK_DIRS",
    "NLI_FILES",
    "task_id",
    "shared_data_root",
    "load_lmbff",
    "load_lmbff_task",
    "load_lmbff_full",
    "is_lmbff_folder",
    "load_ag_news",
    "load_fewglue",
    "fewglue_task",
    "load_nli",
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
        Path(__file__).resolve().parents[2] / ".." / "shared" / "data",
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
    raw = read_bytes(path)
    if verify:
        _verify_md5(path, raw)
    text = decode_text(raw, path)
    return _parse_lmbff(tid, path, text)


def _parse_lmbff(tid: str, path: Path, text: str) -> tuple[Examples, list[str]]:
    has_header = tid not in _HEADERLESS_CSV and tid != "cola"
    if tid in _HEADERLESS_CSV:
        rows = parse_delimited(text, ",", quoted=True, where=path)
    else:
        # GLUE-style TSV: quotes are literal characters, never field delimiters
        rows = parse_delimited(text, "\t", quoted=False, where=path)
    n_lines = physical_lines(text)
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
            data = json.loads(decode_text(read_bytes(path), path))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: bad JSON at line {exc.lineno}: {exc.msg}") from None
        a, b = ("sentence1", "sentence2") if tid == "stsb" else ("premise", "hypothesis")
        for key, rec in data.items():
            examples.append({a: rec["text_a"], b: rec["text_b"]})
            labels.append(str(rec["label"]) if tid == "stsb" else _class_name(tid, str(rec["label"]), f"{path}, record {key}"))
    else:  # sentence<TAB>label with CSV-style quoting
        rows = parse_delimited(decode_text(read_bytes(path), path), "\t", quoted=True, where=path)
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != 2:
                raise DataError(f"{path}, row {n}: {len(row)} columns, expected 2")
            examples.append({"text": row[0]})
            labels.append(_class_name(tid, row[1], f"{path}, line {n}"))
    return examples, labels


def is_lmbff_folder(folder: Path) -> bool:
    """Whether ``folder`` is laid out as LM-BFF's (TASK/K-SEED/split.tsv|csv with TASK an LM-BFF task)."""
    try:
        tid = task_id(folder.parent.name)
    except DataError:
        return False
    return tid in LMBFF_TASK_DIRS and any(f.suffix in (".tsv", ".csv") for f in folder.iterdir() if f.is_file())


# --------------------------------------------------------------------------------------------
# AG News, FewGLUE, NLI test files
# --------------------------------------------------------------------------------------------


def _read_csv_rows(path: Path) -> list[list[str]]:
    return parse_delimited(decode_text(read_bytes(path), path), ",", quoted=True, where=path)


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
    for n, rec in iter_jsonl(path):
        missing = [f for f in fields if f not in rec]
        if missing:
            raise DataError(f"{path}, line {n}: missing field(s) {missing}")
        examples.append({f: to_text(rec[f]) for f in fields})
        lab = rec.get("label")
        if lab is None:
            unlabelled = True
            continue
        labels.append(_class_name(tid, to_text(lab).lower() if tid == "boolq" else to_text(lab), f"{path}, line {n}"))
    if unlabelled:
        if labels:
            raise DataError(f"{path}: some lines have a label and some do not")
        return examples, None
    return examples, labels


def fewglue_task(name: str) -> str | None:
    """The task id of ``name`` when it is a FewGLUE task (BoolQ, CB, RTE), else None."""
    try:
        tid = task_id(name)
    except DataError:
        return None
    return tid if tid in _FEWGLUE_DIRS else None


#: The NLI evaluation files under ``nli/``, by name.
NLI_FILES = {
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
    if key not in NLI_FILES:
        raise DataError(f"unknown NLI file {name!r}; known: {', '.join(NLI_FILES)}")
    path = _root(root) / "nli" / NLI_FILES[key]
    tid = "mnli" if key.startswith("mnli") else "snli"
    examples: Examples = []
    labels: list[str] = []
    if path.suffix == ".jsonl":
        for n, rec in iter_jsonl(path):
            examples.append({"premise": to_text(rec.get("premise")), "hypothesis": to_text(rec.get("hypothesis"))})
            labels.append(_class_name(tid, str(rec.get("label")), f"{path}, line {n}"))
    else:  # snli_test.tsv: premise, hypothesis, label with CSV-style quoting; 0/1/2 = E/N/C
        rows = parse_delimited(decode_text(read_bytes(path), path), "\t", quoted=True, where=path)
        if not rows or rows[0] != ["premise", "hypothesis", "label"]:
            raise DataError(f"{path}: expected header premise, hypothesis, label")
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != 3 or row[2].strip() not in _SNLI_TEST_LABELS:
                raise DataError(f"{path}, line {n}: expected premise, hypothesis, label in 0/1/2; got {row!r}")
            examples.append({"premise": row[0], "hypothesis": row[1]})
            labels.append(_SNLI_TEST_LABELS[row[2].strip()])
    return examples, labels
