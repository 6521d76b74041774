"""The probing baseline, behind the same API as :class:`~promptlearn.PromptClassifier` (see
:mod:`promptlearn.estimators.text_baseline` for what the baselines share).

:class:`ProbeClassifier`: a frozen encoder (any ``transformers`` encoder or decoder, loaded with ``AutoModel``
by :class:`~promptlearn.models.encoder.FrozenEncoder`; an encoder without a masked-LM head, such as the
sentence-transformers MiniLM, is fine) gives one fixed-length vector per example (mean of the last hidden states
over the attention mask, the first token's state, or the last token's); a logistic-regression (scikit-learn) or
linear (torch, trained with :class:`~promptlearn.pipeline.training.Trainer`) head classifies it.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError, DataError, PromptlearnError
from ..io.artifacts import atomic_directory, atomic_write_text, save_model_folder
from ..models.encoder import POOLINGS, FrozenEncoder
from .saved_folders import recorded_model_name
from .text_baseline import FORMAT_VERSION, _json_params, _open_saved, _TextClassifier

logger = logging.getLogger(__name__)

PROBE_FORMAT = "promptlearn.ProbeClassifier"

HEADS = ("logistic", "linear")


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
        frozen = FrozenEncoder.load(self.model, tokenizer=self.tokenizer, device=self.device, dtype=self.dtype)
        return frozen.model, frozen.tokenizer, frozen.device

    def transform(self, X: Any) -> np.ndarray:
        """The pooled features ``[n_examples, hidden_size]`` the head sees (float32)."""
        return self._features(self._inputs(X)).cpu().numpy()

    def _features(self, texts: Sequence[Sequence[str]]) -> Any:
        return FrozenEncoder(self.encoder_, self.tokenizer_, self._device).features(
            texts, pooling=self.pooling, max_length=self.max_length, batch_size=self.batch_size,
            show_progress=self._progress())

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
