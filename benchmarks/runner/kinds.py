"""Running one unit: each method kind trained on a cell's data and asked for test predictions."""

from __future__ import annotations

import json
import random
import shlex
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import environment
from benchmarks.runner.config import (BENCH_HINT, ENSEMBLE_PARAMS, PROMPTS, REPO, TFIDF_LOGISTIC, TFIDF_VECTORIZER,
                                      Config, Method, Unit)
from benchmarks.runner.data import DataSource
from promptlearn.io import tasks as ptasks
from promptlearn.core.errors import ConfigError

# ----------------------------------------------------------------------------------------------------
# Running one unit
# ----------------------------------------------------------------------------------------------------


class Skip(Exception):
    """A unit that cannot run here (an optional package is missing): reported, never fatal."""


class MeanOf(list):
    """Several prediction sets for one row, whose metrics are averaged (the ensemble's mean single prompt)."""


def resolve_model(name: str) -> str:
    """A model name as the loaders take it: a short name as is, a path made absolute (tried relative to the
    current folder, then to the repository). Hub ids are not used: nothing is downloaded here."""
    from promptlearn.models import loader as models

    if name.lower() in models.short_names():
        models.resolve(name)  # raises with the install hint when the package is missing
        return name
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else list(dict.fromkeys([Path.cwd() / path, REPO / path]))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    raise ConfigError(f"model {name!r} not found: no folder {' or '.join(map(str, candidates))}, and it is no short "
                      f"name ({', '.join(models.short_names())}); hub ids are not downloaded here")


def _text(example: Mapping[str, Any]) -> str:
    return " ".join(str(v) for v in example.values())


def _json_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(_json_value(v) is not _NOT_JSON for v in value):
        return [_json_value(v) for v in value]
    return _NOT_JSON


_NOT_JSON = object()


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters whose values are JSON scalars or lists of them; the others (objects, mappings) are left
    out rather than written as a repr that changes from run to run."""
    out = {}
    for key, value in params.items():
        value = _json_value(value)
        if value is not _NOT_JSON:
            out[key] = value
    return out


def _effective(estimator: Any) -> dict[str, Any]:
    """An estimator's scalar parameters (defaults included), for the result file; a PromptClassifier's grouped
    options under their flat names (``demos``, ``learning_rate``, ``source``), as configs spell them."""
    from promptlearn.estimators.options import FLAT

    skip = ("model", "tokenizer", "checkpoint_dir", "show_progress")
    params = estimator.get_params(deep=False)
    if hasattr(estimator, "tuning_config_"):
        flat_name = {place: name for name, place in FLAT.items()}
        params = {k: v for k, v in params.items() if k not in ("scoring", "training", "demonstrations", "tuning")}
        for group in ("scoring", "training", "demonstrations"):
            for option, value in getattr(estimator, group).get_params().items():
                params[flat_name.get((group, option), f"{group}_{option}")] = value
        tuning = estimator.tuning_config_
        params["source"] = tuning.source
        for option, value in tuning.get_params().items():
            if ("tuning", option) in flat_name:
                params[flat_name[("tuning", option)]] = value
    return _json_params({k: v for k, v in params.items() if k not in skip})


def _training_summary(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"steps": result.steps, "best_step": result.best_step, "best_dev_accuracy": result.best_metric,
            "stopped_early": result.stopped_early}


def _footprint(clf: Any) -> dict[str, int]:
    """What a trained PromptClassifier costs to keep: the parameters training changed (a continuous prompt's /
    adapter's own, else the model's unfrozen weights) and the bytes its saved artifact takes."""
    module = clf.prompt_
    if module is not None:
        trainable = module.n_parameters()
    else:
        trainable = sum(p.numel() for p in clf.model_.model.parameters() if p.requires_grad)
    with tempfile.TemporaryDirectory(prefix="artifact-") as tmp:
        clf.save(Path(tmp) / "clf")
        size = sum(f.stat().st_size for f in (Path(tmp) / "clf").rglob("*") if f.is_file())
    return {"trainable_parameters": int(trainable), "artifact_bytes": int(size)}


class Runner:
    def __init__(self, config: Config, source: DataSource, results: Path, config_arg: str) -> None:
        self.config = config
        self.source = source
        self.results = results
        self.folder = results / config.name
        self.config_arg = config_arg
        self._env: dict[str, Any] | None = None
        self._shared_models: dict[str, Any] = {}
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
        expected = ptasks.TASK_LABELS[task]
        if sorted(classes) != sorted(expected):
            raise ConfigError(f"{what} has the classes {list(classes)}, but {task} has {expected}")

    # -- the kinds ---------------------------------------------------------------------------------
    def _prompt_classifier(self, unit: Unit, loaded: Any, params: dict[str, Any],
                           method: Method | None = None) -> tuple[Any, dict[str, Any]]:
        from promptlearn import PromptClassifier

        template, verbalizer, after_mask = self.prompt_for(method or unit.method, unit.task, loaded.kind)
        from promptlearn.estimators.options import from_flat

        params = {k: v for k, v in params.items() if k != "after_mask"}
        clf = PromptClassifier(loaded.model, template, verbalizer, tokenizer=loaded.tokenizer, show_progress=False,
                               **from_flat({**params, "after_mask": after_mask}))
        self._check_classes(clf.verbalizer_.classes, unit.task, f"verbalizer {verbalizer!r}")
        for test in unit.tests:
            self._check_classes(clf.verbalizer_.classes, test, f"verbalizer {verbalizer!r}")
        info = {"model_kind": loaded.kind, "template": template if isinstance(template, str) else None,
                "template_text": clf.template_.source, "verbalizer": verbalizer if isinstance(verbalizer, str) else None,
                "label_words": clf.verbalizer_.to_dict(),
                "after_mask": after_mask if loaded.kind == "causal" else None}
        return clf, info

    def _shared_model(self, model: str) -> Any:
        """A model loaded once per process, for the kinds that never train it (zero_shot, icl)."""
        from promptlearn import load_model

        if model not in self._shared_models:
            self._shared_models[model] = load_model(resolve_model(model))
        return self._shared_models[model]

    def _zero_shot(self, unit: Unit, model: str, tests: list) -> tuple[list[list[str]], dict]:
        from promptlearn.core.calibration import contextual_calibration

        loaded = self._shared_model(model)
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
            extra = {"prompt": info, "training": _training_summary(clf.training_result_), **_footprint(clf)}
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
            extra = {"estimator_params": {"tfidf": _json_params(vec_params),
                                          "logistic_regression": _json_params(lr_params)}}

            def predict(examples):
                return clf.predict([_text(e) for e in examples]) if examples else []
        elif kind == "setfit":
            predict, extra = self._setfit(unit, model, params, X, y)
        elif kind == "icl":
            predict, extra = self._icl(unit, model, params, X, y)
        elif kind == "ensemble":
            predict, extra = self._ensemble(unit, model, params, train, dev)
        elif kind == "search":
            predict, extra = self._search(unit, model, params, train, dev)
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
        from promptlearn.models import loader as models

        source = models.resolve(model)[0] if model.lower() in models.short_names() else resolve_model(model)
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

    def _icl(self, unit: Unit, model: str, params: dict, X: list, y: list) -> tuple[Any, dict]:
        """In-context learning, no training: demonstrations drawn from the cell's training data; both rows (raw
        and calibrated) from one scoring pass."""
        loaded = self._shared_model(model)
        clf, info = self._prompt_classifier(unit, loaded, dict(params, seed=unit.seed, demo_pool=(X, y)))
        raw_row, calibrated_row = unit.method.rows()

        def predict(examples):
            if not examples:
                return {raw_row: [], calibrated_row: []}
            raw, calibrated = clf.raw_and_calibrated_log_proba(examples)
            return {raw_row: list(clf.classes_[raw.argmax(axis=1)]),
                    calibrated_row: list(clf.classes_[calibrated.argmax(axis=1)])}

        return predict, {"prompt": info, "estimator_params": _effective(clf)}

    def _ensemble(self, unit: Unit, model: str, params: dict, train, dev) -> tuple[Any, dict]:
        """PET: one PromptClassifier per template, each trained from its own copy of the model. Rows: every
        combination rule over the same trained members, the best member on the dev set, the members' mean
        accuracy, and with ``unlabeled``: the student distilled from the ensemble (PET's final model) and, with
        ``ipet_generations``, the iPET ensemble."""
        from promptlearn import FineTuneClassifier, PromptEnsemble, load_model
        from promptlearn.estimators.combination import COMBINE_RULES, combine_log_probs, combine_predictions

        own = {key: params.pop(key) for key in ENSEMBLE_PARAMS if key in params}
        (X, y), (Xd, yd) = train, dev
        name = unit.method.name
        loaded = load_model(resolve_model(model))
        members, prompts = [], []
        templates = own["templates"]
        if isinstance(templates, Mapping):
            templates = templates.get(unit.task, templates.get("default"))
        for template in templates:
            member, info = self._prompt_classifier(unit, loaded, dict(params, seed=unit.seed),
                                                   replace(unit.method, template=template))
            members.append(member)
            prompts.append(info)
        combine = own.get("ipet_combine", "weighted")
        ensemble = PromptEnsemble(members, combine=combine, weights_from=own.get("weights_from", "train"),
                                  calibrate_members=own.get("calibrate_members", False), seed=unit.seed)
        ensemble.fit(X, y, dev=(Xd, yd))  # each member trains a copy of the model
        del loaded, members
        dev_accuracy = [float(m.score(Xd, yd)) for m in ensemble.members_]
        best = int(np.argmax(dev_accuracy))  # the first of the best on ties
        extra: dict[str, Any] = {
            "prompts": prompts, "member_dev_accuracy": dev_accuracy, "best_member": best,
            "pet_weights": [float(w) for w in ensemble.weights_],
            "estimator_params": {"members": _effective(ensemble.members_[0]),
                                 "ensemble": _json_params(own)}}  # templates: in "params" and "prompts"
        later: dict[str, Any] = {}  # row -> a classifier trained after PET (student, iPET ensemble)
        if own.get("unlabeled", 0):
            unlabeled, info = self.source.unlabeled(unit.task, own["unlabeled"], unit.seed, X + Xd)
            extra.update(info, n_unlabeled=len(unlabeled))
            student = FineTuneClassifier(resolve_model(model), seed=unit.seed, show_progress=False,
                                         learning_rate=own.get("student_learning_rate", 1e-4),
                                         max_steps=own.get("student_max_steps", params.get("max_steps")),
                                         train_batch_size=params.get("train_batch_size", 8),
                                         warmup_ratio=params.get("warmup_ratio", 0.0),
                                         eval_every=params.get("eval_every"))
            later[f"{name}_distilled"] = ensemble.distill(unlabeled, student, temperature=own.get("temperature", 2.0),
                                                          dev=(Xd, yd))
            extra["distillation_training"] = _training_summary(later[f"{name}_distilled"].training_result_)
            if own.get("ipet_generations", 0):
                successor = ensemble.ipet(X, y, unlabeled, dev=(Xd, yd), generations=own["ipet_generations"])
                later[f"{name}_ipet"] = successor
                extra["ipet_train_sizes"] = [h["train_sizes"] for h in successor.ipet_history_]
        classes = ensemble.classes_

        def predict(examples):
            if not examples:
                return {row: [] for row in unit.method.rows()}
            stacked = ensemble.member_log_proba(examples)  # [members, examples, classes]
            out: dict[str, Any] = {
                f"{name}_best_single": list(classes[stacked[best].argmax(axis=1)]),
                f"{name}_mean_single": MeanOf(list(classes[member.argmax(axis=1)]) for member in stacked)}
            for rule in COMBINE_RULES:
                chosen = (combine_predictions(stacked, rule, ensemble.weights_) if rule == "vote" else
                          combine_log_probs(stacked, rule, ensemble.weights_).argmax(axis=1))
                out[f"{name}_{rule}"] = list(classes[chosen])
            for row, classifier in later.items():
                out[row] = [str(c) for c in classifier.predict(examples)]
            return out

        return predict, extra

    def _search(self, unit: Unit, model: str, params: dict, train, dev) -> tuple[Any, dict]:
        """Discrete prompt search on the cell's training and dev data (``search_*`` parameters go to
        PromptSearch), then the best prompt found: zero-shot (calibrated if that scored better on dev) and
        trained like ``prompt`` with the other parameters. Starts from the task's default template, and with
        ``start_from_manual = true`` from its label words too (the given prompt PromptSearch keeps unless a
        found one beats it on dev by its ``keep_margin``)."""
        from promptlearn import PromptClassifier, load_model
        from promptlearn.applications.search import PromptSearch

        (X, y), (Xd, yd) = train, dev
        options = {key[len("search_"):]: params.pop(key) for key in list(params) if key.startswith("search_")}
        from_manual = params.pop("start_from_manual", False)
        loaded = load_model(resolve_model(model))
        template, verbalizer, after_mask = self.prompt_for(unit.method, unit.task, loaded.kind)
        options.setdefault("template", template)
        if from_manual:  # the manual prompt is the search's baseline (else the label words are searched only)
            options.setdefault("verbalizer", verbalizer)
        start = time.perf_counter()
        search = PromptSearch(loaded.model, tokenizer=loaded.tokenizer, seed=unit.seed, show_progress=False,
                              after_mask=after_mask, **options).fit(X, y, dev=(Xd, yd))
        seconds = time.perf_counter() - start
        best = search.result_.best(1)[0]
        calibrate = (best.calibrated or 0.0) > (best.zero_shot or 0.0)
        from promptlearn.estimators.options import from_flat

        scoring = {k: v for k, v in params.items() if k in ("batch_size", "max_length", "multi_token", "content_free")}
        zero_shot = PromptClassifier(loaded.model, best.template, best.label_words, tokenizer=loaded.tokenizer,
                                     calibrate=calibrate, show_progress=False,
                                     **from_flat({**scoring, "after_mask": after_mask}))
        fresh = load_model(resolve_model(model))  # prompt-based fine-tuning from the original weights
        trained = PromptClassifier(fresh.model, best.template, best.label_words, tokenizer=fresh.tokenizer,
                                   show_progress=False, seed=unit.seed,
                                   **from_flat({**params, "after_mask": after_mask}))
        trained.fit(X, y, dev=(Xd, yd))
        zero_row, pet_row = unit.method.rows()
        result = search.result_
        extra = {"search": {"candidates": len(result.candidates), "zero_shot_calibrated": calibrate,
                            "best": {k: v for k, v in best.to_dict().items() if k != "seconds"},
                            "stages": [{k: v for k, v in stage.items() if k != "seconds"} for stage in result.stages],
                            "notes": list(result.notes), "options": _json_params(options)},
                 "training": _training_summary(trained.training_result_), "estimator_params": _effective(trained),
                 # wall-clock figures go under the result's timing (merged by run)
                 "timing": {"search_seconds": seconds,
                            "search_stage_seconds": [[s["name"], s.get("seconds")] for s in result.stages]}}

        def predict(examples):
            if not examples:
                return {zero_row: [], pet_row: []}
            return {zero_row: list(zero_shot.predict(examples)), pet_row: list(trained.predict(examples))}

        return predict, extra

    # -- one unit ----------------------------------------------------------------------------------
    def run(self, unit: Unit) -> list[dict[str, Any]]:
        import torch

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
            by_row = {method.name: predictions}
        else:
            start = time.perf_counter()
            predict, extra = self._fit(unit, model, train, dev)
            timing["fit_seconds"] = time.perf_counter() - start  # model loading included
            timing.update(extra.pop("timing", {}))  # a kind's own wall-clock figures (e.g. the search's)
            start = time.perf_counter()
            outputs = [predict(X) for X, _, _ in tests]
            timing["predict_seconds"] = time.perf_counter() - start
            by_row = ({row: [out[row] for out in outputs] for row in method.rows()} if method.rows() != [method.name]
                      else {method.name: [list(out) for out in outputs]})
        total = time.perf_counter() - started
        out = []
        n_test_total = sum(info["n_test"] for _, _, info in tests)
        finished = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        for row in method.rows():
            for test, (_, y_test, info), predicted in zip(unit.tests, tests, by_row[row]):
                result = {
                    "config": config.name, "method": row, "kind": method.kind, "model": model,
                    **({"method_entry": method.name} if method.rows() != [method.name] else {}),
                    "params": method.config_dict(), "task": unit.task, "test_task": test, "k": unit.k,
                    "seed": unit.seed, "n_train": len(train[1]) if train else 0, "n_dev": len(dev[1]) if dev else 0,
                    **self._metrics(row, test, y_test, predicted), "test_limit": config.test_limit,
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

    @staticmethod
    def _metrics(row: str, test: str, y_test: Sequence[str], predicted: Sequence[Any]) -> dict[str, Any]:
        """Accuracy, macro-F1 and the confusion matrix of one row's predictions; for a MeanOf several
        prediction sets, the mean accuracy and macro-F1 (and each set's accuracy)."""
        from promptlearn.core.metrics import classification_report

        classes = ptasks.TASK_LABELS[test]
        index = {c: i for i, c in enumerate(classes)}
        sets = list(predicted) if isinstance(predicted, MeanOf) else [predicted]
        reports = []
        for labels in sets:
            unknown = sorted({str(p) for p in labels if str(p) not in index})
            if unknown:
                raise ConfigError(f"{row} predicts {unknown}, which are not {test} classes {classes}")
            reports.append(classification_report([index[c] for c in y_test], [index[str(p)] for p in labels], classes))
        if not isinstance(predicted, MeanOf):
            report = reports[0]
            return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "classes": classes,
                    "confusion_matrix": report["confusion_matrix"]}
        return {"accuracy": float(np.mean([r["accuracy"] for r in reports])),
                "macro_f1": float(np.mean([r["macro_f1"] for r in reports])), "classes": classes,
                "confusion_matrix": None, "set_accuracies": [r["accuracy"] for r in reports]}
