"""Where each split of each task comes from, and the LM-BFF checksum check."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.runner.config import Unit
from promptlearn.io import sampling as psampling
from promptlearn.io import tasks as ptasks
from promptlearn.core.errors import ChecksumError, ConfigError, DataError

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
        return self.root / "lm-bff" / "k-shot" / ptasks.LMBFF_TASK_DIRS[task] / f"16-{seed}"

    def _kshot_seeds(self, task: str) -> list[int]:
        base = self.root / "lm-bff" / "k-shot" / ptasks.LMBFF_TASK_DIRS[task]
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
        files = ptasks._split_files(folder)
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

    def full_file(self, task: str, split: str) -> Path:
        """LM-BFF's full ``train`` or ``dev`` file of a task (``lm-bff/full/<TASK>/<split>.tsv`` or ``.json``)."""
        folder = self.root / "lm-bff" / "full" / ptasks.LMBFF_TASK_DIRS[task]
        found = [folder / f"{split}{ext}" for ext in (".tsv", ".json") if (folder / f"{split}{ext}").is_file()]
        if not found:
            raise DataError(f"no {split} file in {folder}")
        return found[0]

    def kshot_files(self, unit: Unit) -> list[Path]:
        """The LM-BFF k-shot files (those with published checksums) a unit reads."""
        files = []
        if unit.method.kind != "zero_shot" and unit.task in ptasks.LMBFF_TASK_DIRS and unit.k <= 16:
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
        if task in ptasks.LMBFF_TASK_DIRS:
            if k <= 16:
                train_path, dev_path = self._kshot_file(task, seed, "train"), self._kshot_file(task, seed, "dev")
                X, y = self._cached(train_path, lambda: ptasks.load_lmbff(train_path.parent, "train"))
                Xd, yd = self._cached(dev_path, lambda: ptasks.load_lmbff(dev_path.parent, dev_path.stem))
                if k < 16:
                    X, y = psampling.sample_k_shot(X, y, k, seed)
                    Xd, yd = psampling.sample_k_shot(Xd, yd, k, seed)
            else:
                X, y = self._cached(("full", task, "train"), lambda: ptasks.load_lmbff_full(task, "train", self.root))
                Xd, yd = self._cached(("full", task, "dev"), lambda: ptasks.load_lmbff_full(task, "dev", self.root))
                X, y = psampling.sample_k_shot(X, y, k, seed)
                Xd, yd = psampling.sample_k_shot(Xd, yd, k, seed, strict=False)
                train_path, dev_path = self.full_file(task, "train"), self.full_file(task, "dev")
            files = {"train": self.record(train_path), "dev": self.record(dev_path)}
            return (X, y), (Xd, yd), files
        if task == "agnews":
            pool_path = self.root / "ag_news" / "train_pool.csv"
            P, py = self._cached(pool_path, lambda: ptasks.load_ag_news("train_pool", self.root))
            tagged = [dict(e, __i=str(i)) for i, e in enumerate(P)]
            Xt, y = psampling.sample_k_shot(tagged, py, k, seed)
            taken = {e["__i"] for e in Xt}
            rest = [(e, lab) for e, lab in zip(tagged, py) if e["__i"] not in taken]
            Xdt, yd = psampling.sample_k_shot([e for e, _ in rest], [lab for _, lab in rest], k, seed, strict=False)
            strip = lambda rows: [{f: v for f, v in e.items() if f != "__i"} for e in rows]  # noqa: E731
            record = self.record(pool_path)
            return (strip(Xt), y), (strip(Xdt), yd), {"train": record, "dev": record}
        raise ConfigError(f"no training data for {task} in the runner: trained methods need an LM-BFF task or "
                          "agnews (FewGLUE tasks are zero-shot only here)")

    def unlabeled(self, task: str, n: int, seed: int, exclude: Sequence[Mapping[str, Any]]) -> tuple[list, dict]:
        """``n`` unlabelled examples (labels dropped), drawn with ``seed`` from the task's full training data
        (LM-BFF tasks: ``lm-bff/full/<TASK>/train``; AG News: ``train_pool.csv``), none of them in ``exclude``
        (the cell's training and dev examples). Fewer when there are fewer."""
        if task in ptasks.LMBFF_TASK_DIRS:
            path = self.full_file(task, "train")
            X, _ = self._cached(("full", task, "train"), lambda: ptasks.load_lmbff_full(task, "train", self.root))
        elif task == "agnews":
            path = self.root / "ag_news" / "train_pool.csv"
            X, _ = self._cached(path, lambda: ptasks.load_ag_news("train_pool", self.root))
        else:
            raise ConfigError(f"no unlabelled text for {task} in the runner (LM-BFF tasks and agnews have some)")
        taken = {json.dumps(e, sort_keys=True) for e in exclude}
        pool = [e for e in X if json.dumps(e, sort_keys=True) not in taken]
        drawn, _ = psampling.subsample(pool, None, n, seed)
        return drawn, {"unlabeled": self.record(path), "n_unlabeled_available": len(pool)}

    def test(self, task: str, seed: int | None, limit: int | None, subset_seed: int) -> tuple[list, list, dict]:
        path = self.test_file(task, seed)
        if task in self.NLI:
            X, y = self._cached(path, lambda: ptasks.load_nli(self.NLI[task], self.root))
        elif task == "agnews":
            X, y = self._cached(path, lambda: ptasks.load_ag_news("test", self.root))
        elif task in self.FEWGLUE:
            X, y = self._cached(path, lambda: ptasks.load_fewglue(task, "val", self.root))
        else:
            X, y = self._cached(path, lambda: ptasks.load_lmbff(path.parent, "test"))
        available = len(X)
        if limit is not None and limit < available:
            X, y = psampling.subsample(X, y, limit, subset_seed)
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
        if rel not in ptasks._read_checksums(checksum):
            raise ChecksumError(f"{checksum} has no md5 for {rel}: cannot verify {path}")
        ptasks._verify_md5(path, path.read_bytes())  # the library's check and message
        checked += 1
    return checked
