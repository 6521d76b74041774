"""Baselines behind the same API as :class:`~promptlearn.PromptClassifier`, so comparisons are like with like.

* :class:`ProbeClassifier`: a frozen encoder (any ``transformers`` encoder or decoder, loaded with
  ``AutoModel``; an encoder without a masked-LM head, such as the sentence-transformers MiniLM, is fine)
  gives one fixed-length vector per example (mean of the last hidden states over the attention mask,
  the first token's state, or the last token's); a logistic-regression (scikit-learn) or linear (torch,
  trained with :class:`~promptlearn.pipeline.training.Trainer`) head classifies it.
* :class:`FineTuneClassifier`: ``AutoModelForSequenceClassification`` with a new head sized to the
  training labels, every weight fine-tuned with cross-entropy through the shared :class:`Trainer`.

Both take strings, dicts, a pandas DataFrame or a ``datasets.Dataset``; two text fields (e.g.
``premise``/``hypothesis``) are encoded as a sentence pair by the tokenizer. Labels are class names:
``classes_`` is the sorted list of the training labels as strings (integer labels become ``"0"``,
``"1"``, ...). ``save(dir)`` writes a folder with ``config.json`` and safetensors weights atomically;
``load(dir)`` gives identical predictions.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from ..io.artifacts import atomic_directory, atomic_write_text, save_model_folder
from .classifier import as_examples, soft_targets
from ..core.errors import ConfigError, DataError, ModelLoadError, PromptlearnError, UnknownLabelError
from .saved_folders import recorded_model_name
from ..models.loader import _not_found_message, dtype_name, model_dtype, resolve, resolve_device
from ..models.precision import MixedPrecision

logger = logging.getLogger(__name__)

PROBE_FORMAT = "promptlearn.ProbeClassifier"
FINETUNE_FORMAT = "promptlearn.FineTuneClassifier"
FORMAT_VERSION = 1

POOLINGS = ("mean", "cls", "last")
HEADS = ("logistic", "linear")
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


def _ensure_pad_token(tokenizer: Any, where: str) -> None:
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelLoadError(f"{where}: the tokenizer has no pad, eos or unk token to pad batches with")
        tokenizer.pad_token = fallback


def _window(tokenizer: Any, max_length: int) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return min(max_length, int(limit)) if isinstance(limit, int) and 0 < limit < 1_000_000 else max_length


def _load_tokenizer(source: str, name: Any, gguf: str | None) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=False, **({"gguf_file": gguf} if gguf else {}))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(_not_found_message(str(name), source, exc)) from None


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


def _dtype_option(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype option for a ``dtype`` parameter (nothing when unset)."""
    return {} if dtype is None else {"dtype": model_dtype(dtype)}


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
        first = [texts[0][i] for i in rows]
        second = [texts[1][i] for i in rows] if len(texts) > 1 else None
        batch = tokenizer(first, second, truncation=True, max_length=_window(tokenizer, self.max_length),
                          padding=True, return_tensors="pt")
        return {k: v.to(device) for k, v in batch.items()}

    def _batches(self, n: int, size: int) -> list[list[int]]:
        return [list(range(start, min(start + size, n))) for start in range(0, n, size)]

    def _progress(self) -> bool:
        from ..models.distributed import is_main_process

        show = self.show_progress if self.show_progress is not None else sys.stderr.isatty()
        return bool(show) and is_main_process()  # several processes: one progress bar

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


# -- the probing baseline ----------------------------------------------------------------------------
class ProbeClassifier(_TextClassifier):
    """A classifier on frozen encoder features: logistic regression or a linear layer (the probing baseline).

    Parameters
    ----------
    model: a hub id, a local folder, a short name (``minilm``) or a loaded ``transformers`` model (then
        pass ``tokenizer`` too). Loaded with ``AutoModel``: masked-LM, causal-LM and plain encoder
        checkpoints all work, as their base model (the language-model head is not used).
    pooling: ``mean`` (of the last hidden states over the attention mask), ``cls`` (the first token's
        state: BERT's ``[CLS]``) or ``last`` (the last non-padding token's: the usual choice for causal
        models, whose first token sees only itself).
    head: ``logistic`` (scikit-learn ``LogisticRegression``, L2, inverse strength ``C``, ``max_iter``) or
        ``linear`` (a ``torch.nn.Linear`` trained with cross-entropy by :class:`~promptlearn.pipeline.training.Trainer`:
        ``learning_rate``, ``epochs`` / ``max_steps``, ``train_batch_size``, ``weight_decay``, ``eval_every`` /
        ``patience`` with ``fit(..., dev=...)``).
    text_fields: the example fields to read, in order: one field, or two encoded as a sentence pair.
        Default: ``text`` for plain strings; for dicts, their keys (ignoring ``label``, ``labels`` and
        ``idx``) when there are one or two, in the first example's order.
    max_length: tokens per example (at most the tokenizer's window); longer inputs are truncated.
    batch_size: examples per forward pass when computing features.
    device, dtype: where the encoder runs and its weights' dtype, as in :class:`PromptClassifier`.
    """

    def __init__(self, model: Any = "minilm", *, tokenizer: Any = None, pooling: str = "mean",
                 head: str = "logistic", text_fields: Any = None, max_length: int = 256, batch_size: int = 32,
                 C: float = 1.0, max_iter: int = 1000, learning_rate: float = 1e-2, epochs: float = 100.0,
                 max_steps: int | None = None, train_batch_size: int = 32, weight_decay: float = 0.0,
                 eval_every: int | None = None, patience: int | None = None, device: str | None = None,
                 dtype: str | None = None, seed: int = 0, show_progress: bool | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.head = head
        self.text_fields = text_fields
        self.max_length = max_length
        self.batch_size = batch_size
        self.C = C
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.max_steps = max_steps
        self.train_batch_size = train_batch_size
        self.weight_decay = weight_decay
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.dtype = dtype
        self.seed = seed
        self.show_progress = show_progress

    # -- encoder --------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        self._check_common_params()
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.head not in HEADS:
            raise ConfigError(f"head must be one of {HEADS}, got {self.head!r}")
        if not (isinstance(self.C, numbers.Real) and self.C > 0):
            raise ConfigError(f"C must be > 0, got {self.C!r}")

    def _load_encoder(self) -> tuple[Any, Any, str]:
        """(encoder, tokenizer, device): the base model of ``model``, frozen and in eval mode."""
        device = resolve_device(self.device)
        if isinstance(self.model, (str, os.PathLike)):
            from transformers import AutoModel

            source, gguf = resolve(str(self.model))
            tokenizer = self.tokenizer if self.tokenizer is not None else _load_tokenizer(source, self.model, gguf)
            try:
                encoder = AutoModel.from_pretrained(source, trust_remote_code=False, **_dtype_option(self.dtype),
                                                    **({"gguf_file": gguf} if gguf else {}))
            except (OSError, ValueError, KeyError) as exc:
                raise ModelLoadError(_not_found_message(str(self.model), source, exc)) from None
            where = f"model {str(self.model)!r}"
        else:
            if self.tokenizer is None:
                raise PromptlearnError("a model object needs its tokenizer: pass tokenizer= as well")
            encoder, tokenizer, where = self.model, self.tokenizer, f"model object {type(self.model).__name__}"
        _ensure_pad_token(tokenizer, where)
        encoder = getattr(encoder, "base_model", encoder)  # the hidden states, not the LM head's logits
        encoder.to(device)
        if model_dtype(self.dtype) not in (None, "auto"):
            encoder.to(model_dtype(self.dtype))
        encoder.eval()
        return encoder, tokenizer, device

    def transform(self, X: Any) -> np.ndarray:
        """The pooled features ``[n_examples, hidden_size]`` the head sees (float32)."""
        return self._features(self._inputs(X)).cpu().numpy()

    def _features(self, texts: Sequence[Sequence[str]]) -> Any:
        import torch
        from tqdm.auto import tqdm

        encoder, tokenizer, device = self.encoder_, self.tokenizer_, self._device
        n = len(texts[0])
        hidden = int(getattr(encoder.config, "hidden_size", 0) or 0)
        chunks = []
        with torch.inference_mode():
            for rows in tqdm(self._batches(n, self.batch_size), desc="features", disable=not self._progress()):
                batch = self._encode(texts, rows, tokenizer, device)
                states = encoder(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].to(states.dtype)
                if self.pooling == "mean":
                    pooled = (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
                else:
                    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
                    if self.pooling == "cls":  # the first real token (padding may be on the left)
                        index = torch.where(mask > 0, positions, mask.shape[1]).min(1).values
                    else:  # the last real token
                        index = torch.where(mask > 0, positions, -1).max(1).values
                    pooled = states[torch.arange(len(rows), device=states.device), index.clamp(min=0)]
                chunks.append(pooled)
        return torch.cat(chunks) if chunks else torch.zeros((0, hidden), device=device)

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, dev: tuple[Any, Any] | None = None) -> ProbeClassifier:
        """Compute the frozen features of ``X`` and fit the head on them.

        ``dev``: ``(X_dev, y_dev)``, used by the ``linear`` head for evaluation every ``eval_every`` steps,
        early stopping (``patience``) and keeping the best weights; the ``logistic`` head ignores it.
        """
        self._check_params()
        texts, labels, classes, fields = self._start_fit(X, y)
        self.__dict__.pop("classes_", None)  # not fitted until the head is
        dev_data = None
        if dev is not None and self.head == "linear":
            dev_data = (self._inputs(dev[0], fields), self._label_indices(dev[1], None, classes))
            if len(dev_data[1]) != len(dev_data[0][0]):
                raise DataError(f"{len(dev_data[0][0])} dev examples but {len(dev_data[1])} dev labels")
        self.encoder_, self.tokenizer_, self._device = self._load_encoder()
        index = {c: i for i, c in enumerate(classes)}
        target = np.array([index[label] for label in labels], dtype=np.int64)
        features = self._features(texts)
        if self.head == "logistic":
            from sklearn.linear_model import LogisticRegression

            if dev is not None:
                logger.info("the logistic head does not use dev data; it is ignored")
            head = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
            head.fit(features.cpu().numpy().astype(np.float64), target)
            self.training_result_ = None
        else:
            head, self.training_result_ = self._train_linear(features, target, len(classes), dev_data)
        self.head_ = head
        self.encoder_name_ = str(self.model) if isinstance(self.model, (str, os.PathLike)) else None
        self.text_fields_ = fields
        self.classes_ = np.array(classes, dtype=object)
        self.n_features_ = int(features.shape[1])
        return self

    def _train_linear(self, features: Any, target: np.ndarray, n_classes: int,
                      dev: tuple[list[list[str]], np.ndarray] | None) -> tuple[Any, Any]:
        import torch
        import torch.nn.functional as F

        from ..pipeline.training import Trainer, TrainingConfig

        features = features.clone()  # a normal tensor (the features were computed in inference mode)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            head = torch.nn.Linear(features.shape[1], n_classes)
        head.to(features.device)
        labels = torch.as_tensor(target, device=features.device)
        evaluate = None
        if dev is not None:
            dev_features = self._features(dev[0])
            dev_labels = torch.as_tensor(dev[1], device=features.device)

            def evaluate() -> float:
                with torch.inference_mode():
                    return float((head(dev_features).argmax(1) == dev_labels).float().mean())

        def loss_fn(indices: list[int]) -> Any:
            return F.cross_entropy(head(features[indices]), labels[indices])

        config = TrainingConfig(learning_rate=self.learning_rate, epochs=self.epochs, max_steps=self.max_steps,
                                batch_size=self.train_batch_size, weight_decay=self.weight_decay,
                                eval_every=self.eval_every, patience=self.patience, seed=self.seed)
        result = Trainer(head, loss_fn, len(target), config, evaluate=evaluate, show_progress=self.show_progress,
                         description="linear probe").train()
        head.eval()
        return head, result

    # -- inference --------------------------------------------------------------------------------------
    def _proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        import torch

        if not texts[0]:
            return np.zeros((0, len(self.classes_)))
        features = self._features(texts)
        if self.head == "logistic" and not isinstance(self.head_, torch.nn.Module):
            return self.head_.predict_proba(features.cpu().numpy().astype(np.float64))
        with torch.inference_mode():
            return torch.softmax(self.head_(features).double(), dim=-1).cpu().numpy()

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` (parameters, classes, fields, the encoder's name) and ``head.safetensors``
        atomically; an encoder given as an object is saved too (``encoder/``)."""
        import torch
        from safetensors.torch import save_file

        self._check_fitted()
        directory = Path(directory)
        by_name = self.encoder_name_ is not None
        name = recorded_model_name(self.encoder_name_) if by_name else None
        config = {"format": PROBE_FORMAT, "version": FORMAT_VERSION,
                  "model": name,
                  "base_model": name or getattr(self.encoder_, "name_or_path", None),
                  "classes": list(self.classes_), "text_fields": list(self.text_fields_),
                  "n_features": self.n_features_, "params": _json_params(self)}
        if isinstance(self.head_, torch.nn.Module):
            tensors = {k: v.detach().cpu().contiguous() for k, v in self.head_.state_dict().items()}
            config["head"] = "linear"
        else:
            tensors = {"coef": torch.from_numpy(np.ascontiguousarray(self.head_.coef_)),
                       "intercept": torch.from_numpy(np.ascontiguousarray(self.head_.intercept_))}
            config["head"] = "logistic"
            config["n_iter"] = [int(n) for n in np.ravel(self.head_.n_iter_)]
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            save_file(tensors, str(tmp / "head.safetensors"))
            if not by_name:  # an encoder given as an object (or loaded from a saved folder): keep a copy
                save_model_folder(self.encoder_, self.tokenizer_, tmp / "encoder")
            atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, **overrides: Any) -> ProbeClassifier:
        """Rebuild a classifier saved by :meth:`save` (the encoder is loaded from its saved name or folder);
        ``overrides`` replace saved parameters (e.g. ``device``). An encoder recorded as a local path outside the
        folder is used only when ``model=`` is passed (see :mod:`promptlearn.estimators.saved_folders`)."""
        from safetensors.torch import load_file

        saved = _open_saved(directory, PROBE_FORMAT, "ProbeClassifier")
        config = saved.config
        params = saved.params(cls, exclude=("model", "tokenizer"))
        model = overrides.pop("model", None)
        params.update(overrides)
        if model is None:  # the encoder by its name (short name or hub id), or the copy in the folder
            model = (saved.model_name(config["model"], "'model'") if config.get("model") is not None
                     else saved.model_dir("encoder", "the encoder folder"))
        with saved.building():
            estimator = cls(model=model, **params)
        estimator._check_params()
        head_file = saved.inside("head.safetensors", "the head's weights (head.safetensors)")
        try:
            tensors = load_file(str(head_file))
        except Exception as exc:  # safetensors raises its own error types for a damaged file
            raise PromptlearnError(f"cannot read {head_file}: {exc}") from None
        estimator.encoder_, estimator.tokenizer_, estimator._device = estimator._load_encoder()
        classes = [str(c) for c in config["classes"]]
        with saved.building():
            estimator.head_ = _saved_head(config, tensors, classes, estimator)
        # saved by name: saving again records the name (or the caller's model=); a folder copy: copied again
        estimator.encoder_name_ = (str(model) if config.get("model") is not None
                                   and isinstance(model, (str, os.PathLike)) else None)
        estimator.training_result_ = None
        estimator.text_fields_ = saved.string_list(config["text_fields"], "'text_fields'")
        estimator.n_features_ = int(config.get("n_features", 0))
        estimator.classes_ = np.array(classes, dtype=object)
        return estimator


def _saved_head(config: dict[str, Any], tensors: dict[str, Any], classes: list[str], estimator: Any) -> Any:
    """The probe's head rebuilt from its saved tensors."""
    import torch

    if config.get("head", "logistic") == "logistic":
        from sklearn.linear_model import LogisticRegression

        head = LogisticRegression(C=estimator.C, max_iter=estimator.max_iter, random_state=estimator.seed)
        head.coef_ = tensors["coef"].numpy()
        head.intercept_ = tensors["intercept"].numpy()
        head.classes_ = np.arange(len(classes))
        head.n_features_in_ = head.coef_.shape[1]
        head.n_iter_ = np.array(config.get("n_iter", [0]), dtype=np.int32)
        return head
    weight = tensors["weight"]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict(tensors)
    head.to(estimator._device)
    head.eval()
    return head


# -- the fine-tuning baseline ------------------------------------------------------------------------
class FineTuneClassifier(_TextClassifier):
    """Standard fine-tuning: a new classification head on the model, every weight trained with cross-entropy.

    Parameters
    ----------
    model: a hub id, a local folder, a short name or a loaded ``transformers`` model (then pass
        ``tokenizer`` too; it is copied, never changed). Loaded with ``AutoModelForSequenceClassification``
        from a masked-LM, plain-encoder, causal-LM (its pad token is set) or sequence-classification
        checkpoint; the classification head is always new, sized to the training labels and initialised
        from ``seed``.
    text_fields, max_length, batch_size (inference), device, dtype: as in :class:`ProbeClassifier`; a bfloat16
        model trains with float32 master weights under autocast (:mod:`promptlearn.models.precision`).
    Training: ``learning_rate``, ``epochs`` or ``max_steps`` (optimizer steps), ``train_batch_size``,
    ``gradient_accumulation_steps``, ``warmup_ratio``, ``weight_decay``; ``eval_every`` / ``patience`` (dev
    evaluations and early stopping with ``fit(..., dev=...)``; the best dev accuracy's weights are kept);
    ``checkpoint_dir`` / ``checkpoint_every`` (atomic checkpoints for ``fit(..., resume=True)``); ``seed``.
    """


    def __init__(self, model: Any = "minilm", *, tokenizer: Any = None, text_fields: Any = None,
                 learning_rate: float = 2e-5, epochs: float = 10.0, max_steps: int | None = None,
                 train_batch_size: int = 8, gradient_accumulation_steps: int = 1, warmup_ratio: float = 0.0,
                 weight_decay: float = 0.01, eval_every: int | None = None, patience: int | None = None,
                 checkpoint_dir: str | None = None, checkpoint_every: int | None = None, max_length: int = 256,
                 batch_size: int = 32, device: str | None = None, dtype: str | None = None, seed: int = 0,
                 show_progress: bool | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.text_fields = text_fields
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.max_steps = max_steps
        self.train_batch_size = train_batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.eval_every = eval_every
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.seed = seed
        self.show_progress = show_progress

    def _build_model(self, classes: list[str]) -> tuple[Any, Any, str]:
        """A fresh sequence-classification model from ``model`` with a seeded new head for ``classes``."""
        if isinstance(self.model, (str, os.PathLike)):
            source, gguf = resolve(str(self.model))
            tokenizer = self.tokenizer if self.tokenizer is not None else _load_tokenizer(source, self.model, gguf)
            model = self._from_source(source, gguf, str(self.model), tokenizer, classes)
            return model, tokenizer, resolve_device(self.device)
        if self.tokenizer is None:
            raise PromptlearnError("a model object needs its tokenizer: pass tokenizer= as well")
        # Fine-tuning must not change the caller's object: go through a copy on disk (any model class works).
        with tempfile.TemporaryDirectory(prefix="promptlearn-finetune-") as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            model = self._from_source(tmp, None, f"model object {type(self.model).__name__}", self.tokenizer, classes)
        return model, self.tokenizer, resolve_device(self.device)

    def _from_source(self, source: str, gguf: str | None, name: str, tokenizer: Any, classes: list[str]) -> Any:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification

        where = f"model {name!r}"
        options: dict[str, Any] = {"trust_remote_code": False, **({"gguf_file": gguf} if gguf else {})}
        try:
            config = AutoConfig.from_pretrained(source, **options)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(_not_found_message(name, source, exc)) from None
        if getattr(config, "is_encoder_decoder", False):
            raise ModelLoadError(f"{where} is an encoder-decoder model ({config.model_type}); FineTuneClassifier "
                                 "takes an encoder (BERT, RoBERTa, ...) or a decoder (GPT-2, Llama, ...)")
        _ensure_pad_token(tokenizer, where)
        config.num_labels = len(classes)
        config.id2label = dict(enumerate(classes))
        config.label2id = {c: i for i, c in enumerate(classes)}
        config.problem_type = "single_label_classification"
        if getattr(config, "pad_token_id", None) is None:  # causal LMs find the last real token by it
            config.pad_token_id = tokenizer.pad_token_id
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            try:
                model = AutoModelForSequenceClassification.from_pretrained(
                    source, config=config, ignore_mismatched_sizes=True, **_dtype_option(self.dtype), **options)
            except ValueError as exc:
                raise ModelLoadError(f"{where} cannot be loaded for sequence classification: "
                                     f"{str(exc).splitlines()[0]}") from None
            except OSError as exc:
                raise ModelLoadError(_not_found_message(name, source, exc)) from None
            self._new_head(model)
        return model

    @staticmethod
    def _new_head(model: Any) -> None:
        """Re-initialise everything outside the base model (the head), so the head is new even when the
        checkpoint already had one of the same size; linear layers as transformers initialises them."""
        import torch

        if model.base_model is model:
            return
        base = {id(p) for p in model.base_model.parameters()}
        std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
        with torch.no_grad():
            for module in model.modules():
                own = list(module.parameters(recurse=False))
                if not own or any(id(p) in base for p in own):
                    continue
                if isinstance(module, torch.nn.Linear):
                    module.weight.normal_(0.0, std)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, torch.nn.LayerNorm):
                    if module.weight is not None:
                        module.weight.fill_(1.0)
                    if module.bias is not None:
                        module.bias.zero_()

    def _check_params(self) -> None:
        self._check_common_params()

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, dev: tuple[Any, Any] | None = None, resume: bool = False,
            classes: Sequence[Any] | None = None) -> FineTuneClassifier:
        """Fine-tune every weight with cross-entropy on ``(X, y)``.

        ``y``: labels, or soft targets (PET distillation): an array ``[n_examples, n_classes]`` of class
        probabilities, trained with cross-entropy against them; ``classes`` then names its columns, in order
        (default ``"0"``, ``"1"``, ...), and becomes ``classes_`` as given (not sorted).
        ``dev``: ``(X_dev, y_dev)`` for evaluation every ``eval_every`` steps (and at the end), early
        stopping after ``patience`` evaluations without gain, and keeping the best weights.
        ``resume``: continue from the checkpoint in ``checkpoint_dir`` (same data and parameters).
        """
        import torch
        import torch.nn.functional as F

        from ..pipeline.training import Trainer, TrainingConfig

        self._check_params()
        soft = soft_targets(y, len(classes) if classes is not None else None)  # None: hard labels (unchanged)
        if soft is None:
            if classes is not None:
                raise ConfigError("classes= names the columns of soft targets; hard labels name their own classes")
            texts, labels, classes, fields = self._start_fit(X, y)
        else:
            examples = self._fit_examples(X)
            if len(examples) != len(soft):
                raise DataError(f"{len(examples)} examples but {len(soft)} rows of soft targets")
            if not examples:
                raise DataError("no training examples")
            classes = [str(c) for c in classes] if classes is not None else [str(i) for i in range(soft.shape[1])]
            if len(set(classes)) != len(classes):
                raise DataError(f"classes {classes} has duplicates; name each column of the soft targets once")
            fields = _resolve_fields(self.text_fields, examples)
            texts, labels = _texts(examples, fields), [classes[i] for i in soft.argmax(axis=1)]
        self.__dict__.pop("classes_", None)  # not fitted until training ends
        index = {c: i for i, c in enumerate(classes)}
        if dev is not None:
            dev_texts = self._inputs(dev[0], fields)
            dev_labels = self._label_indices(dev[1], len(dev_texts[0]), classes)
        model, tokenizer, device = self._build_model(classes)
        model.to(device)
        self.model_, self.tokenizer_, self._device = model, tokenizer, device
        target = torch.as_tensor([index[label] for label in labels], device=device)
        if soft is not None:  # cross_entropy takes class probabilities as targets too (float, [n, C])
            target = torch.as_tensor(soft, dtype=torch.float32, device=device)
        evaluate = None
        if dev is not None:

            def evaluate() -> float:
                return float((self._proba(dev_texts).argmax(axis=1) == dev_labels).mean())

        precision = MixedPrecision(model)

        def loss_fn(indices: list[int]) -> Any:
            with precision.autocast():
                logits = model(**self._encode(texts, indices, tokenizer, device)).logits
            return F.cross_entropy(logits.float(), target[indices])

        config = TrainingConfig(
            learning_rate=self.learning_rate, epochs=self.epochs, max_steps=self.max_steps,
            batch_size=self.train_batch_size, gradient_accumulation_steps=self.gradient_accumulation_steps,
            warmup_ratio=self.warmup_ratio, weight_decay=self.weight_decay, eval_every=self.eval_every,
            patience=self.patience, checkpoint_every=self.checkpoint_every or self.eval_every, seed=self.seed)
        trainer = Trainer(model, loss_fn, len(labels), config, evaluate=evaluate, checkpoint_dir=self.checkpoint_dir,
                          show_progress=self.show_progress, description="fine-tuning")
        with precision:
            self.training_result_ = trainer.train(resume=resume)
        model.eval()
        self.base_model_ = str(self.model) if isinstance(self.model, (str, os.PathLike)) else None
        self.text_fields_ = fields
        self.classes_ = np.array(classes, dtype=object)
        return self

    # -- inference --------------------------------------------------------------------------------------
    def _proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """Class probabilities; with several processes each computes a contiguous slice and all get every row
        back in input order (see :func:`promptlearn.models.distributed.gather_rows`)."""
        from ..models.distributed import gather_rows

        return gather_rows(len(texts[0]), lambda part: self._local_proba([list(t)[part] for t in texts]))

    def _local_proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        n = len(texts[0])
        model, tokenizer, device = self.model_, self.tokenizer_, self._device
        chunks = []
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for rows in tqdm(self._batches(n, self.batch_size), desc="predicting", disable=not self._progress()):
                    logits = model(**self._encode(texts, rows, tokenizer, device)).logits
                    chunks.append(torch.softmax(logits.double(), dim=-1).cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(chunks) if chunks else np.zeros((0, model.config.num_labels))


    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` (parameters, classes, fields) and ``model/`` (the fine-tuned model and its
        tokenizer, safetensors) atomically; :meth:`load` gives identical predictions."""
        self._check_fitted()
        directory = Path(directory)
        base = recorded_model_name(self.base_model_) if self.base_model_ is not None else None
        config = {"format": FINETUNE_FORMAT, "version": FORMAT_VERSION, "base_model": base,
                  "classes": list(self.classes_), "text_fields": list(self.text_fields_),
                  "params": _json_params(self)}
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            save_model_folder(self.model_, self.tokenizer_, tmp / "model")
            atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, **overrides: Any) -> FineTuneClassifier:
        """Rebuild a classifier saved by :meth:`save`; ``overrides`` replace saved parameters (e.g. ``device``).

        Its ``model`` parameter is the base model it was fine-tuned from (when that was named), so a clone
        refits from the same start; without a name it is the saved fine-tuned model."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        saved = _open_saved(directory, FINETUNE_FORMAT, "FineTuneClassifier")
        config = saved.config
        params = saved.params(cls, exclude=("model", "tokenizer"))
        base = overrides.pop("model", None)
        params.update(overrides)
        folder = saved.model_dir("model", "the model folder")  # loaded here, safetensors only, no custom code
        with saved.building():
            # the base model is only a parameter (clone + fit start from it); load() never reads it
            estimator = cls(model=base if base is not None else config.get("base_model") or folder, **params)
        estimator._check_params()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
            model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=False,
                                                                       use_safetensors=True,
                                                                       **_dtype_option(estimator.dtype))
        except (OSError, ValueError) as exc:
            raise PromptlearnError(f"cannot load the fine-tuned model in {folder}: "
                                   f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None
        classes = [str(c) for c in config["classes"]]
        if model.config.num_labels != len(classes):
            raise PromptlearnError(f"{folder} has {model.config.num_labels} outputs but config.json lists "
                                   f"{len(classes)} classes; the folder is damaged")
        device = resolve_device(estimator.device)
        model.to(device)
        model.eval()
        estimator.model_, estimator.tokenizer_, estimator._device = model, tokenizer, device
        estimator.base_model_ = config.get("base_model")
        estimator.training_result_ = None
        estimator.text_fields_ = saved.string_list(config["text_fields"], "'text_fields'")
        estimator.classes_ = np.array(classes, dtype=object)
        return estimator
