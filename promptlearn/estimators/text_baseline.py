"""What the baselines (:class:`~promptlearn.estimators.probe.ProbeClassifier`,
:class:`~promptlearn.estimators.finetune.FineTuneClassifier`) share: inputs, labels, tokenisation, scoring and
their saved folders, behind the same API as :class:`~promptlearn.PromptClassifier`, so comparisons are like with like.

Both take strings, dicts, a pandas DataFrame or a ``datasets.Dataset``; two text fields (e.g.
``premise``/``hypothesis``) are encoded as a sentence pair by the tokenizer. Labels are class names:
``classes_`` is the sorted list of the training labels as strings (integer labels become ``"0"``,
``"1"``, ...). ``save(dir)`` writes a folder with ``config.json`` and safetensors weights atomically;
``load(dir)`` gives identical predictions.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from ..core.errors import ConfigError, DataError, PromptlearnError, UnknownLabelError
from ..core.inputs import as_examples
from ..models.encoder import encode_batch
from ..models.loader import dtype_name

FORMAT_VERSION = 1

# Keys never taken as text when the fields are guessed from dict examples (a DataFrame's label column ...).
NON_TEXT_KEYS = ("label", "labels", "idx")
DEFAULT_FIELD = "text"


class NotFittedError(PromptlearnError, _SklearnNotFittedError):
    """The estimator is used before :meth:`fit` (or :meth:`load`)."""


# -- inputs ------------------------------------------------------------------------------------------
def _is_table(X: Any) -> bool:
    return (hasattr(X, "to_dict") and hasattr(X, "columns")) or (hasattr(X, "column_names") and hasattr(X, "to_list"))


def _examples(X: Any, fields: Sequence[str]) -> list[dict[str, Any]]:
    """``X`` as dicts (via :func:`as_examples`), with a clear error for anything that is not text data."""
    if X is None:
        raise DataError("X is None; pass a list of strings, a list of dicts, a pandas DataFrame or a datasets.Dataset")
    if isinstance(X, (bytes, bytearray)) or (not isinstance(X, (str, Mapping)) and not _is_table(X)
                                             and not hasattr(X, "__iter__")):
        raise DataError(f"X is a {type(X).__name__}; pass a list of strings, a list of dicts, a pandas DataFrame "
                        "or a datasets.Dataset")
    if not isinstance(X, (str, Mapping)) and not _is_table(X):
        X = list(X)
        if len(fields) != 1:
            for position, item in enumerate(X):
                if isinstance(item, str):
                    raise DataError(f"item {position} is a plain string, but this classifier reads the fields "
                                    f"{list(fields)}; pass dicts (or a DataFrame) with those keys")
    return as_examples(X, fields)


def _resolve_fields(text_fields: Any, examples: Sequence[Mapping[str, Any]]) -> list[str]:
    """The text fields to read, in order: ``text_fields`` as given, or guessed from the first example."""
    if text_fields is not None:
        fields = [text_fields] if isinstance(text_fields, str) else list(text_fields)
        if not 1 <= len(fields) <= 2 or not all(isinstance(f, str) and f for f in fields):
            raise ConfigError(f"text_fields must name one field or two (a sentence pair), got {text_fields!r}")
        return fields
    keys = [k for k in examples[0] if k not in NON_TEXT_KEYS]
    if not 1 <= len(keys) <= 2:
        raise DataError(f"cannot tell which fields hold the text: the examples have the keys {list(examples[0])}; "
                        "pass text_fields=['field'] or text_fields=['first', 'second'] (a sentence pair)")
    return [str(k) for k in keys]


def _texts(examples: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[list[str]]:
    """One list of strings per field, checked: every example has every field, and it is text."""
    columns: list[list[str]] = [[] for _ in fields]
    for position, example in enumerate(examples):
        for column, name in zip(columns, fields):
            if name not in example:
                raise DataError(f"item {position} has no field {name!r} (it has {sorted(map(str, example))}); "
                                f"every example needs the fields {list(fields)}")
            value = example[name]
            if not isinstance(value, str):
                raise DataError(f"item {position}: field {name!r} is {value!r} ({type(value).__name__}), not text; "
                                "fill or drop missing values")
            column.append(value)
    return columns


def _labels(y: Any, n_examples: int | None = None) -> list[str]:
    """Labels as strings: class names as given, integers as their decimal form."""
    if y is None or isinstance(y, (str, bytes, Mapping)) or not hasattr(y, "__iter__"):
        raise DataError(f"y must be a sequence of labels (class names or integers), got {type(y).__name__}")
    labels = []
    for position, label in enumerate(y):
        if isinstance(label, (bool, np.bool_)):
            labels.append(str(bool(label)))
        elif isinstance(label, str):
            labels.append(str(label))
        elif isinstance(label, numbers.Integral):
            labels.append(str(int(label)))
        else:
            raise DataError(f"label {position} is {label!r} ({type(label).__name__}); labels must be class names "
                            "(strings) or integers")
    if n_examples is not None and len(labels) != n_examples:
        raise DataError(f"{n_examples} examples but {len(labels)} labels")
    return labels


def _check_training_data(n_examples: int, labels: Sequence[str]) -> list[str]:
    if n_examples == 0:
        raise DataError("no training examples: fit needs at least one example of each of two classes")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"the training labels hold only one class ({classes[0]!r}); a classifier needs at least two")
    return classes


def _open_saved(directory: str | os.PathLike, fmt: str, what: str) -> Any:
    """The saved folder, opened by the one safe loader (:mod:`promptlearn.estimators.saved_folders`)."""
    from .saved_folders import open_saved

    return open_saved(directory, fmt=fmt, version=FORMAT_VERSION, what=what,
                      schema={"classes": (list,), "text_fields": (list,), "params": (dict,), "model": (str, type(None)),
                              "base_model": (str, type(None)), "n_features": (int,), "head": (str,),
                              "n_iter": (list,)},
                      required=("classes", "text_fields", "params"))


def _json_params(estimator: BaseEstimator) -> dict[str, Any]:
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in ("model", "tokenizer")}
    if params.get("text_fields") is not None and not isinstance(params["text_fields"], str):
        params["text_fields"] = list(params["text_fields"])
    if params.get("checkpoint_dir") is not None:
        params["checkpoint_dir"] = str(params["checkpoint_dir"])
    params["dtype"] = dtype_name(params.get("dtype"))
    return params


class _TextClassifier(ClassifierMixin, BaseEstimator):
    """What both baselines share: inputs, labels, tokenisation, scoring."""

    # -- fitted state -------------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "classes_", None) is not None

    def _check_fitted(self) -> None:
        if getattr(self, "classes_", None) is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first, or "
                                 f"{type(self).__name__}.load(folder)")

    def _start_fit(self, X: Any, y: Any) -> tuple[list[list[str]], list[str], list[str], list[str]]:
        """Check the training data; returns (texts per field, labels, classes, fields)."""
        examples = self._fit_examples(X)
        labels = _labels(y, len(examples))
        classes = _check_training_data(len(examples), labels)
        fields = _resolve_fields(self.text_fields, examples)
        return _texts(examples, fields), labels, classes, fields

    def _fit_examples(self, X: Any) -> list[dict[str, Any]]:
        """The training inputs as dicts (plain strings fill the one text field)."""
        if isinstance(self.text_fields, str):
            string_fields = [self.text_fields]
        elif self.text_fields is not None and len(self.text_fields) == 1:
            string_fields = list(self.text_fields)
        else:
            string_fields = [DEFAULT_FIELD] if self.text_fields is None else list(self.text_fields)
        return _examples(X, string_fields)

    def _inputs(self, X: Any, fields: Sequence[str] | None = None) -> list[list[str]]:
        if fields is None:
            self._check_fitted()
            fields = self.text_fields_
        return _texts(_examples(X, fields), fields)

    def _label_indices(self, y: Any, n_examples: int | None = None, classes: Sequence[str] | None = None) -> np.ndarray:
        if classes is None:
            self._check_fitted()
            classes = list(self.classes_)
        index = {c: i for i, c in enumerate(classes)}
        labels = _labels(y, n_examples)
        unknown = sorted({label for label in labels if label not in index})
        if unknown:
            raise UnknownLabelError(f"label(s) {unknown} are not among the training labels {list(classes)}; "
                                    "a classifier can only be scored on the classes it was trained on")
        return np.array([index[label] for label in labels], dtype=np.int64)

    def _encode(self, texts: Sequence[Sequence[str]], rows: Sequence[int], tokenizer: Any,
                device: str) -> dict[str, Any]:
        """One padded batch of the examples ``rows`` (a sentence pair when there are two fields)."""
        return encode_batch(texts, rows, tokenizer, device, self.max_length)

    def _progress(self) -> bool:
        from ..models.distributed import show_progress

        return show_progress(self.show_progress)

    def _check_common_params(self) -> None:
        for name in ("batch_size", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

    # -- inference ----------------------------------------------------------------------------------
    def _proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[n_examples, n_classes]``, classes in ``classes_`` order."""
        return self._proba(self._inputs(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Natural-log class probabilities, classes in ``classes_`` order."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each example (class names, as in ``classes_``)."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy; labels are class names (or integers, compared as their decimal form)."""
        from sklearn.metrics import accuracy_score

        texts = self._inputs(X)
        truth = self._label_indices(y, len(texts[0]))  # checked before the (slow) predictions
        return float(accuracy_score(truth, self._proba(texts).argmax(axis=1), sample_weight=sample_weight))
