"""PromptEnsemble: several prompts as one classifier; PET distillation and iPET (Schick & Schütze, 2021).

Members are classifiers with ``predict_proba`` and ``classes_`` -- usually :class:`PromptClassifier` objects
that differ in template, verbalizer or model, zero-shot or trained -- and they must share their classes (same
names, same order). Their class log-probabilities are combined in memory (no logit files on disk;
:mod:`.combination`):

* ``mean``: the mean of the members' probabilities;
* ``log_mean``: the mean of their log-probabilities, renormalised (PET's unweighted ``mean`` of logits);
* ``weighted``: the mean of their log-probabilities weighted by each member's accuracy on the training (or dev)
  data *before* :meth:`fit` trained it, renormalised (PET's ``wmean``, its default);
* ``vote``: majority vote of the members' predictions; ``predict_proba`` gives the vote shares and ties
  between classes are broken by the mean probability (then by class order).

``calibrate_members=True`` applies contextual calibration to every member (those whose ``calibrate`` is already
on are used as they are).

Training (:meth:`fit`) is PET: each member is fitted on the labelled data, starting from its own copy of the
model (``sklearn.base.clone``: a model given as an object is deep-copied), so members never share trained
weights and the members given to the constructor are never changed. ``distill`` trains one student on the
ensemble's soft labels for unlabelled text; ``ipet_generations=k`` runs iPET after PET.

Where this differs from PET (Schick & Schütze, 2021, and its code):

* PET combines the label words' raw logits; here the members' class log-probabilities are combined, which is
  the same over classes for single-word classes (they differ by one constant per example).
* A "member" is whatever is passed: PET's ensemble has several seeds per pattern, so pass one PromptClassifier
  per (pattern, seed) to reproduce it.
* Distillation trains the student with cross-entropy against ``softmax(ensemble log-probabilities / T)`` on the
  student's plain logits; PET also divides the student's logits by T (and scales the loss by T^2), so PET's
  student is sharper, ours is as soft as its targets -- the argmax it learns is the same.
* iPET: ``ipet_generations=k`` is the paper's k generations after the first (PET's code counts the first one
  too: its ``generations=3`` is ``ipet_generations=2``). The labellers combine with this ensemble's ``combine``
  rule (PET: ``weighted``); the weights are not measured again in later generations (every generation starts
  from the same model and prompt, so they would be the same). A class with fewer unlabelled examples than
  scheduled gets all of them (PET's code duplicates examples, and loops forever when there are none). At least
  one other member labels (PET's code takes ``round(lambda * (n - 1))``, which can be none). Zero-shot iPET starts
  with ``ipet_initial_per_class`` per class (PET's code: 10 in all, split over the classes, optionally drawn from
  the n most likely examples of each class).

Memory: zero-shot members may share one loaded model -- load it once and pass the same ``model=`` object and
``tokenizer=`` to several PromptClassifiers, then use the ensemble unfitted or with ``fit_members=False`` (fit
then measures only the weights). Members that ``fit`` trains get a copy each (PET trains one model per pattern).
"""

from __future__ import annotations

import copy
import gc
import inspect
import json
import logging
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from ..io.artifacts import atomic_directory, atomic_write_text
from ..core.calibration import contextual_calibration
from ..core.errors import ConfigError, DataError, PromptlearnError
from ..core.verbalizer import label_indices as core_label_indices
from .combination import COMBINE_RULES, combine_log_probs, combine_predictions
from .members import common_classes, describe_member, member_classes
from .model_card import write_card

logger = logging.getLogger(__name__)

FORMAT = "promptlearn.PromptEnsemble"
FORMAT_VERSION = 1
WEIGHT_SOURCES = ("train", "dev")
_LOG_FLOOR = float(np.log(np.finfo(np.float64).tiny))  # a member's probability 0 counts as the tiniest float


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


# -- inputs --------------------------------------------------------------------------------------------------
def _as_list(X: Any) -> list[Any]:
    """Examples as a list (strings or dicts), so every member sees the same items and sets can be joined."""
    if X is None:
        return []
    if isinstance(X, (str, Mapping)):
        return [X]
    if hasattr(X, "to_dict") and hasattr(X, "columns"):  # pandas DataFrame
        return X.to_dict(orient="records")
    if hasattr(X, "column_names") and hasattr(X, "to_list"):  # datasets.Dataset
        return list(X.to_list())
    if not hasattr(X, "__iter__"):
        raise DataError(f"X is a {type(X).__name__}; pass a list of strings, a list of dicts, a pandas DataFrame "
                        "or a datasets.Dataset")
    return list(X)


def _as_labels(y: Any, n_examples: int) -> list[Any]:
    if y is None or isinstance(y, (str, bytes, Mapping)) or not hasattr(y, "__iter__"):
        raise DataError(f"y must be a sequence of labels (class names or class indices), got {type(y).__name__}")
    labels = list(y)
    if len(labels) != n_examples:
        raise DataError(f"{n_examples} examples but {len(labels)} labels")
    return labels


def label_indices(labels: Sequence[Any], classes: Sequence[str]) -> np.ndarray:
    """Class index of each label, read as :func:`promptlearn.core.verbalizer.label_indices` reads them (a class
    name, or an integer index in class order when no class name is an integer)."""
    return np.asarray(core_label_indices(labels, classes, where="the ensemble's classes"), dtype=np.int64)


def saved_class(directory: str | os.PathLike) -> type:
    """The class of a saved promptlearn classifier folder (PromptClassifier, PromptEnsemble,
    FineTuneClassifier, ProbeClassifier), read from the ``format`` in its ``config.json``."""
    from .finetune import FINETUNE_FORMAT, FineTuneClassifier
    from .probe import PROBE_FORMAT, ProbeClassifier
    from .saved_classifier import FORMAT as PROMPT_FORMAT
    from .classifier import PromptClassifier

    classes = {PROMPT_FORMAT: PromptClassifier, FORMAT: PromptEnsemble, FINETUNE_FORMAT: FineTuneClassifier,
               PROBE_FORMAT: ProbeClassifier}
    from ..io.artifacts import recover_directory

    recover_directory(directory)  # a save killed between its renames: finish it before looking
    try:
        fmt = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8")).get("format")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return PromptClassifier  # its loader explains what is wrong with the folder
    if not isinstance(fmt, str) or fmt not in classes:
        raise PromptlearnError(f"{Path(directory) / 'config.json'} is not a saved promptlearn classifier "
                               f"(format {fmt!r}; expected one of {sorted(classes)})")
    return classes[fmt]


def load_classifier(directory: str | os.PathLike, **overrides: Any) -> Any:
    """Load any saved promptlearn classifier, choosing the class by its ``config.json`` (:func:`saved_class`)."""
    return saved_class(directory).load(directory, **overrides)


# -- the ensemble ------------------------------------------------------------------------------------------
class PromptEnsemble(ClassifierMixin, BaseEstimator):
    """Several classifiers (usually prompts) combined into one, with PET training, distillation and iPET.

    Parameters
    ----------
    members: the classifiers (PromptClassifier, or anything with ``predict_proba`` / ``classes_``); they must
        share their classes, in the same order.
    combine: ``mean`` (of probabilities), ``log_mean`` (of log-probabilities), ``weighted`` (PET's: log-probabilities
        weighted by each member's accuracy before training) or ``vote`` (majority; ``predict_proba`` returns the
        vote shares; ties are broken by the mean probability).
    weights_from: where the PET weights are measured, before each member is trained: ``train`` (the training
        data, as PET) or ``dev`` (``fit(..., dev=...)``).
    calibrate_members: contextual calibration of every member's probabilities before they are combined.
    fit_members: ``fit`` trains every member that has a ``fit`` method (PET); ``False`` leaves the members as
        they are and only measures the weights (zero-shot or already trained members).
    ipet_generations: iPET generations after the PET one (0: plain PET); needs ``fit(..., unlabeled=...)``.
    ipet_fraction: the share of the other members that label a member's new examples (PET's lambda, 0.25).
    ipet_scale: each generation's training set is this many times the previous one (PET's d, 5).
    ipet_initial_per_class: zero-shot iPET (no labelled data): new examples per class in the first generation.
    seed: seeds iPET's choices (which members label, which examples are drawn); the members keep their own seeds.
    """

    def __init__(self, members: Sequence[Any] = (), *, combine: str = "mean", weights_from: str = "train",
                 calibrate_members: bool = False, fit_members: bool = True, ipet_generations: int = 0,
                 ipet_fraction: float = 0.25, ipet_scale: float = 5, ipet_initial_per_class: int = 10,
                 seed: int = 0) -> None:
        self.members = members
        self.combine = combine
        self.weights_from = weights_from
        self.calibrate_members = calibrate_members
        self.fit_members = fit_members
        self.ipet_generations = ipet_generations
        self.ipet_fraction = ipet_fraction
        self.ipet_scale = ipet_scale
        self.ipet_initial_per_class = ipet_initial_per_class
        self.seed = seed

    # -- configuration -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if isinstance(self.members, (str, Mapping)) or not hasattr(self.members, "__len__") or not len(self.members):
            raise ConfigError("an ensemble needs members: PromptEnsemble([PromptClassifier(...), ...])")
        for position, member in enumerate(self.members):
            if not callable(getattr(member, "predict_proba", None)):
                raise ConfigError(f"member {position} is a {type(member).__name__}, not a classifier with "
                                  "predict_proba")
        if self.combine not in COMBINE_RULES:
            raise ConfigError(f"combine must be one of {COMBINE_RULES}, got {self.combine!r}")
        if self.weights_from not in WEIGHT_SOURCES:
            raise ConfigError(f"weights_from must be one of {WEIGHT_SOURCES}, got {self.weights_from!r}")
        if isinstance(self.ipet_generations, bool) or not isinstance(self.ipet_generations, numbers.Integral) \
                or self.ipet_generations < 0:
            raise ConfigError(f"ipet_generations must be an integer >= 0, got {self.ipet_generations!r}")
        if not 0 < self.ipet_fraction <= 1:
            raise ConfigError(f"ipet_fraction must be in (0, 1], got {self.ipet_fraction!r}")
        if not self.ipet_scale >= 1:
            raise ConfigError(f"ipet_scale must be >= 1, got {self.ipet_scale!r}")
        if isinstance(self.ipet_initial_per_class, bool) or not isinstance(self.ipet_initial_per_class,
                                                                           numbers.Integral) \
                or self.ipet_initial_per_class < 1:
            raise ConfigError(f"ipet_initial_per_class must be an integer >= 1, got {self.ipet_initial_per_class!r}")

    def _active(self) -> list[Any]:
        """The fitted members, or the given ones before :meth:`fit` (zero-shot use)."""
        fitted = getattr(self, "members_", None)
        if fitted is not None:
            return list(fitted)
        self._check_params()
        return list(self.members)

    @property
    def classes_(self) -> np.ndarray:
        return np.array(common_classes(self._active()), dtype=object)

    def _trains(self, member: Any) -> bool:
        return bool(self.fit_members) and callable(getattr(member, "fit", None))

    def _weights(self) -> np.ndarray | None:
        weights = getattr(self, "weights_", None)
        if self.combine == "weighted" and weights is None:
            raise PromptlearnError("combine='weighted' needs the members' accuracies: call fit(X, y) first "
                                   "(fit_members=False measures them without training)")
        return weights

    # -- inference -----------------------------------------------------------------------------------------
    def _member_log_proba(self, member: Any, position: int, X: list[Any], n_classes: int) -> np.ndarray:
        if callable(getattr(member, "predict_log_proba", None)):
            log_probs = np.asarray(member.predict_log_proba(X), dtype=np.float64)
        else:
            with np.errstate(divide="ignore"):
                log_probs = np.log(np.asarray(member.predict_proba(X), dtype=np.float64))
        if log_probs.shape != (len(X), n_classes):
            raise PromptlearnError(f"{describe_member(member, position)} returned probabilities of shape "
                                   f"{log_probs.shape}, expected {(len(X), n_classes)}")
        if self.calibrate_members and not getattr(member, "calibrate", False):
            prior = getattr(member, "content_free_prior", None)
            if not callable(prior):
                raise ConfigError(f"calibrate_members=True, but {describe_member(member, position)} has no prompt to "
                                  "calibrate (no content_free_prior)")
            log_probs = contextual_calibration(log_probs, prior())
        return np.maximum(log_probs, _LOG_FLOOR)

    def _stack(self, members: Sequence[Any], X: list[Any]) -> np.ndarray:
        n_classes = len(common_classes(members))
        if not X:
            return np.zeros((len(members), 0, n_classes))
        return np.stack([self._member_log_proba(m, i, X, n_classes) for i, m in enumerate(members)])

    def member_log_proba(self, X: Any) -> np.ndarray:
        """Every member's class log-probabilities ``[n_members, n_examples, n_classes]`` (calibrated when
        ``calibrate_members``): combine them with :func:`~promptlearn.estimators.combination.combine_log_probs` to
        compare rules in one pass."""
        return self._stack(self._active(), _as_list(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The ensemble's class log-probabilities ``[n_examples, n_classes]`` (``-inf`` for a class without
        votes under ``vote``)."""
        return combine_log_probs(self.member_log_proba(X), self.combine, self._weights())

    def predict_proba(self, X: Any) -> np.ndarray:
        """The ensemble's class probabilities; under ``vote`` the share of members voting for each class."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The predicted class names (``vote``: ties broken by the mean probability)."""
        indices = combine_predictions(self.member_log_proba(X), self.combine, self._weights())
        return self.classes_[indices] if len(indices) else np.array([], dtype=object)

    def predict_with_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(predicted class indices, probabilities)`` from one pass over the members (what :meth:`predict`
        and :meth:`predict_proba` give; under ``vote`` the indices carry the tie-break)."""
        log_probs = self.member_log_proba(X)
        weights = self._weights()
        return (combine_predictions(log_probs, self.combine, weights),
                np.exp(combine_log_probs(log_probs, self.combine, weights)))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of :meth:`predict`; labels are class names or class indices."""
        from sklearn.metrics import accuracy_score

        X = _as_list(X)
        truth = self.label_indices(_as_labels(y, len(X)))
        predicted = combine_predictions(self.member_log_proba(X), self.combine, self._weights())
        return float(accuracy_score(truth, predicted, sample_weight=sample_weight))

    def label_indices(self, y: Any) -> np.ndarray:
        """Class index of each label (class names or class indices)."""
        return label_indices(list(y), list(self.classes_))

    # -- training ------------------------------------------------------------------------------------------
    def _accuracies(self, members: Sequence[Any], X: list[Any], truth: np.ndarray) -> np.ndarray:
        log_probs = self._stack(members, X)
        return (log_probs.argmax(axis=2) == truth[None, :]).mean(axis=1)

    def _fit_member(self, member: Any, X: list[Any], y: list[str], unlabeled: Any, dev: Any) -> None:
        accepted = inspect.signature(member.fit).parameters
        options = {}
        if unlabeled is not None and "unlabeled" in accepted:
            options["unlabeled"] = unlabeled
        if dev is not None and "dev" in accepted:
            options["dev"] = dev
        member.fit(X, y, **options)

    def fit(self, X: Any, y: Any = None, *, unlabeled: Any = None,
            dev: tuple[Any, Any] | None = None) -> PromptEnsemble:
        """PET: measure each member's accuracy before training (the ``weighted`` rule's weights), then fit
        every trainable member on ``(X, y)`` from its own copy of the model; then ``ipet_generations`` of iPET
        on ``unlabeled``.

        ``unlabeled``: unlabelled examples, for iPET and for members' auxiliary LM loss (``mlm_weight``).
        ``dev``: ``(X_dev, y_dev)``, passed to every member's ``fit`` (model selection) and, with
        ``weights_from="dev"``, where the weights are measured. ``X`` and ``y`` may be empty (or ``None``)
        for zero-shot iPET only.
        """
        self._check_params()
        X = _as_list(X)
        labels = _as_labels(y if y is not None or X else [], len(X))
        ipet = self.ipet_generations > 0
        unlabeled_list = self._ipet_inputs(unlabeled, "fit(X, y, unlabeled=...)") if ipet else (
            _as_list(unlabeled) if unlabeled is not None else None)
        if not X and not ipet and self.fit_members and any(callable(getattr(m, "fit", None)) for m in self.members):
            raise DataError("no training examples; fit needs labelled examples (or fit_members=False)")
        members = [clone(m) if self._trains(m) else m for m in self.members]
        self._check_checkpoint_dirs(members)
        classes = common_classes(members, required=False)
        if classes is not None:
            names = [classes[i] for i in label_indices(labels, classes)]
        else:  # members that learn their classes from the labels (e.g. unfitted FineTuneClassifiers)
            names = [str(label) for label in labels]
        if dev is not None:
            dev = (_as_list(dev[0]), list(dev[1]))
            if len(dev[0]) != len(dev[1]):
                raise DataError(f"dev: {len(dev[0])} examples but {len(dev[1])} labels")
        if self.weights_from == "dev" and dev is None:
            raise ConfigError("weights_from='dev' needs fit(..., dev=(X_dev, y_dev))")
        # PET's weights: each member's accuracy before it is trained.
        weights = None
        if classes is not None:
            source = dev if self.weights_from == "dev" else (X, names)
            if source[0]:
                weights = self._accuracies(members, source[0], label_indices(source[1], classes))
        for position, member in enumerate(members):
            if self._trains(member) and X:
                logger.info("training %s", describe_member(member, position))
                self._fit_member(member, X, names, unlabeled, dev)
        classes = common_classes(members)
        if weights is None:
            weights = np.full(len(members), 1.0)  # zero-shot iPET without dev data: nothing to measure
            if self.combine == "weighted":
                logger.warning("no labelled data to measure the members' accuracies on: equal weights")
        self.members_ = members
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.ipet_history_ = [{"generation": 0, "train_sizes": [len(X) if self._trains(m) else 0 for m in members]}]
        if ipet:
            try:
                self._ipet(X, names, unlabeled_list, unlabeled, dev, classes, self.ipet_generations)
            except BaseException:
                for name in ("members_", "weights_", "ipet_history_"):
                    self.__dict__.pop(name, None)
                raise
        return self

    def ipet(self, X: Any, y: Any, unlabeled: Any, *, dev: tuple[Any, Any] | None = None,
             generations: int | None = None) -> PromptEnsemble:
        """iPET's generations after this ensemble's PET training, as a new ensemble; this one is left as it is,
        so both can be used (or measured). ``fit(X, y).ipet(X, y, unlabeled)`` trains what
        ``fit(X, y, unlabeled=unlabeled)`` with ``ipet_generations`` does (the same members, draws and labels).
        ``generations``: how many (default ``ipet_generations``, at least 1). Memory: this ensemble's members
        stay loaded while the new one trains."""
        if getattr(self, "members_", None) is None:
            raise PromptlearnError("ipet() continues a fitted ensemble: call fit(X, y) first")
        generations = self.ipet_generations if generations is None else generations
        if isinstance(generations, bool) or not isinstance(generations, numbers.Integral) or generations < 1:
            raise ConfigError(f"iPET needs at least one generation, got {generations!r}")
        unlabeled_list = self._ipet_inputs(unlabeled, "ipet(X, y, unlabeled)")
        X = _as_list(X)
        classes = common_classes(self.members_)
        names = [classes[i] for i in label_indices(_as_labels(y if y is not None or X else [], len(X)), classes)]
        if dev is not None:
            dev = (_as_list(dev[0]), list(dev[1]))
        successor = copy.copy(self)  # shares the PET members (read only); _ipet rebinds members_, never mutates it
        successor.ipet_history_ = list(self.ipet_history_)
        successor._ipet(X, names, unlabeled_list, unlabeled, dev, classes, generations)
        return successor

    def _ipet_inputs(self, unlabeled: Any, call: str) -> list[Any]:
        """The unlabelled examples as a list, after checking that iPET can run (two or more trainable members,
        some unlabelled examples); ``call`` names the call in the error."""
        if not self.fit_members or len(self.members) < 2:
            raise ConfigError("iPET retrains every member on examples labelled by the others: it needs at least "
                              "two members and fit_members=True")
        examples = _as_list(unlabeled) if unlabeled is not None else []
        if not examples:
            raise DataError(f"iPET needs unlabelled examples: {call}")
        return examples

    def _check_checkpoint_dirs(self, members: Sequence[Any]) -> None:
        folders = [str(getattr(m, "checkpoint_dir", None)) for m in members
                   if self._trains(m) and getattr(m, "checkpoint_dir", None) is not None]
        duplicates = sorted({f for f in folders if folders.count(f) > 1})
        if duplicates:
            raise ConfigError(f"several members write their checkpoints to {duplicates}; give each member its own "
                              "checkpoint_dir (or none)")

    def ipet_schedule(self, class_counts: Sequence[int], generation: int) -> list[int]:
        """New examples per class in iPET generation ``generation`` (>= 1): with labelled data (``class_counts``
        per class, total ``n``), the training set grows to ``n * scale ** generation`` with the labelled data's
        class distribution, i.e. ``floor(count * (scale ** generation - 1))`` new examples per class; without
        labelled data, ``ipet_initial_per_class * scale ** (generation - 1)`` per class."""
        if sum(class_counts):
            return [int(count * (self.ipet_scale ** generation - 1) + 1e-9) for count in class_counts]
        return [int(self.ipet_initial_per_class * self.ipet_scale ** (generation - 1) + 1e-9)] * len(class_counts)

    def _ipet(self, X: list[Any], names: list[str], unlabeled: list[Any], unlabeled_arg: Any, dev: Any,
              classes: list[str], generations: int) -> None:
        """iPET generations 1..k: member i is retrained from its original model on the labelled data plus
        examples of ``unlabeled`` labelled by a random ``ipet_fraction`` of the other members of the previous
        generation, drawn per class (the labelled data's class distribution) with probability proportional to
        the labelling ensemble's confidence."""
        n_members = len(self.members)
        n_labellers = max(1, round(self.ipet_fraction * (n_members - 1)))
        counts = [names.count(c) for c in classes]
        for generation in range(1, generations + 1):
            per_class = self.ipet_schedule(counts, generation)
            log_probs = self._stack(self.members_, unlabeled)  # [members, unlabelled, classes]
            plans, records = [], []
            for i in range(n_members):
                rng = np.random.default_rng([int(self.seed), generation, i])
                others = [j for j in range(n_members) if j != i]
                labellers = sorted(int(j) for j in rng.choice(others, size=n_labellers, replace=False))
                subset, weights = log_probs[labellers], self.weights_[labellers]
                predicted = combine_predictions(subset, self.combine, weights)
                confidence = np.exp(combine_log_probs(subset, self.combine, weights)[np.arange(len(unlabeled)),
                                                                                      predicted])
                chosen: list[int] = []
                shortfall = {}
                for c, wanted in enumerate(per_class):
                    pool = np.flatnonzero(predicted == c)
                    take = min(wanted, len(pool))
                    if take < wanted:
                        shortfall[classes[c]] = wanted - take
                    if take:
                        p = confidence[pool] / confidence[pool].sum()
                        chosen.extend(int(j) for j in rng.choice(pool, size=take, replace=False, p=p))
                if shortfall:
                    logger.warning("iPET generation %d, member %d: too few unlabelled examples predicted as %s; "
                                   "the training set is smaller than scheduled", generation, i, shortfall)
                new_labels = [classes[predicted[j]] for j in chosen]
                plans.append((X + [unlabeled[j] for j in chosen], names + new_labels))
                records.append({"labellers": labellers, "unlabeled_indices": chosen, "labels": new_labels,
                                "size": len(X) + len(chosen), "shortfall": shortfall})
            # Free the previous generation before training the next (one generation of models in memory).
            kept = [None if self._trains(original) else member for original, member in zip(self.members, self.members_)]
            self.members_ = None
            del log_probs
            gc.collect()
            members = []
            for i, (train_x, train_y) in enumerate(plans):
                member = clone(self.members[i]) if self._trains(self.members[i]) else kept[i]
                if self._trains(member):
                    logger.info("iPET generation %d: training %s on %d examples", generation,
                                describe_member(member, i), len(train_x))
                    self._fit_member(member, train_x, train_y, unlabeled_arg, dev)
                members.append(member)
            common_classes(members)
            self.members_ = members
            self.ipet_history_.append({"generation": generation,
                                       "scheduled_per_class": dict(zip(classes, per_class)),
                                       "train_sizes": [r["size"] for r in records], "members": records})

    # -- distillation --------------------------------------------------------------------------------------
    def soft_labels(self, X: Any, temperature: float = 2.0) -> np.ndarray:
        """PET's soft targets: ``softmax(ensemble logits / temperature)``, the logits being the ensemble's class
        log-probabilities (:meth:`predict_log_proba`)."""
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature!r}")
        return _softmax(self.predict_log_proba(X) / temperature)

    def distill(self, unlabeled: Any, student: Any, *, temperature: float = 2.0,
                dev: tuple[Any, Any] | None = None) -> Any:
        """PET's distillation: label ``unlabeled`` with the ensemble's soft targets (:meth:`soft_labels`) and
        train ``student`` on them with cross-entropy against the soft targets (the same gradients as the KL
        divergence). Returns a fitted clone of ``student`` (the given object is left untouched), the model to
        deploy: a :class:`FineTuneClassifier` (PET's sequence classifier) or a :class:`PromptClassifier` with
        the ensemble's classes. ``dev`` is passed to the student's ``fit``.
        """
        examples = _as_list(unlabeled)
        if not examples:
            raise DataError("distillation needs unlabelled examples")
        classes = list(self.classes_)
        targets = self.soft_labels(examples, temperature)
        student = clone(student)
        accepted = inspect.signature(student.fit).parameters
        options: dict[str, Any] = {}
        if "classes" in accepted:
            options["classes"] = classes
        elif member_classes(student) not in (None, classes):
            raise PromptlearnError(f"the student's classes {member_classes(student)} differ from the ensemble's "
                                   f"{classes}; give it a verbalizer with the same classes, in the same order")
        if dev is not None and "dev" in accepted:
            options["dev"] = dev
        student.fit(examples, targets, **options)
        if member_classes(student) != classes:
            raise PromptlearnError(f"the distilled student has the classes {member_classes(student)}, not the "
                                   f"ensemble's {classes}")
        self.distillation_targets_ = targets
        return student

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a folder with ``config.json`` (parameters, classes, weights, iPET history) and ``members/<i>/``,
        each saved by the member's own ``save``, atomically; :meth:`load` gives identical predictions. Members that
        share one model object each save a copy of it (and load their own)."""
        members = self._active()
        for position, member in enumerate(members):
            if not callable(getattr(member, "save", None)):
                raise PromptlearnError(f"{describe_member(member, position)} cannot be saved (it has no save method)")
        fitted = getattr(self, "members_", None) is not None
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "members"}
        weights = getattr(self, "weights_", None)
        config = {
            "format": FORMAT, "version": FORMAT_VERSION, "classes": common_classes(members), "params": params,
            "fitted": fitted, "weights": [float(w) for w in weights] if fitted and weights is not None else None,
            "members": [{"folder": f"members/{i}", "class": type(m).__name__} for i, m in enumerate(members)],
            "ipet_history": getattr(self, "ipet_history_", None) if fitted else None,
        }
        directory = Path(directory)
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            for i, member in enumerate(members):
                member.save(tmp / "members" / str(i))
            atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
            write_card(tmp, location=directory.name if directory.is_absolute() else directory.as_posix(),
                       keep_evaluations_from=directory if overwrite and directory.is_dir() else None)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, **overrides: Any) -> PromptEnsemble:
        """Rebuild an ensemble saved by :meth:`save`. ``overrides`` that are ensemble parameters replace the
        saved ones; the others (e.g. ``device``, ``batch_size``) go to every member that has that parameter."""
        from .saved_folders import open_saved

        saved = open_saved(directory, fmt=FORMAT, version=FORMAT_VERSION, what="PromptEnsemble",
                           schema={"members": (list,), "classes": (list,), "params": (dict,), "fitted": (bool,),
                                   "weights": (list, type(None)), "ipet_history": (list, type(None))},
                           required=("members", "classes", "params"))
        config = saved.config
        own = set(cls._get_param_names())
        params = saved.params(cls, exclude=("members",))
        params.update({k: v for k, v in overrides.items() if k in own and k != "members"})
        rest = {k: v for k, v in overrides.items() if k not in own}
        classes = saved.string_list(config["classes"], "'classes'")
        members, used = [], set()
        for position, entry in enumerate(config["members"]):
            saved.require(entry, f"members[{position}]", (dict,))
            # a member is a folder inside this one: never an absolute path, '..' or a link leading out
            folder = saved.inside(entry.get("folder"), f"members[{position}].folder", kind="dir")
            member_class = saved_class(folder)
            accepts = getattr(member_class, "accepts_override", lambda name: name in member_class._get_param_names())
            accepted = {k: v for k, v in rest.items() if accepts(k)}
            used.update(accepted)
            members.append(member_class.load(folder, **accepted))
        if set(rest) - used:
            raise ConfigError(f"unknown parameter(s) {sorted(set(rest) - used)}: neither the ensemble nor any "
                              "member has them")
        with saved.building():
            ensemble = cls(members, **params)
            weights = config.get("weights")
            if weights is not None:
                weights = np.asarray([saved.require(w, "'weights'", (float,)) for w in weights], dtype=np.float64)
        if common_classes(members) != classes:
            raise PromptlearnError(f"{saved.path}: the saved members' classes differ from {classes}; the folder is "
                                   "damaged")
        if config.get("fitted"):
            ensemble.members_ = list(members)
            ensemble.weights_ = weights
            ensemble.ipet_history_ = config.get("ipet_history") or []
        return ensemble
