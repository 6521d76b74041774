"""The fine-tuning baseline, behind the same API as :class:`~promptlearn.PromptClassifier` (see
:mod:`promptlearn.estimators.text_baseline` for what the baselines share).

:class:`FineTuneClassifier`: ``AutoModelForSequenceClassification`` with a new head sized to the training labels,
every weight fine-tuned with cross-entropy through the shared :class:`~promptlearn.pipeline.training.Trainer`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError, DataError, ModelLoadError, PromptlearnError
from ..core.inputs import soft_targets
from ..io.artifacts import atomic_directory, atomic_write_text, save_model_folder
from ..models.encoder import dtype_option, load_tokenizer, row_batches
from ..models.kinds import ensure_pad_token
from ..models.loader import _not_found_message, resolve_device, resolve_local
from ..models.precision import MixedPrecision
from .saved_folders import recorded_model_name
from .text_baseline import FORMAT_VERSION, _json_params, _open_saved, _resolve_fields, _texts, _TextClassifier

FINETUNE_FORMAT = "promptlearn.FineTuneClassifier"


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
            source, gguf = resolve_local(str(self.model))
            tokenizer = self.tokenizer if self.tokenizer is not None else load_tokenizer(source, self.model, gguf)
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
        ensure_pad_token(tokenizer, where)
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
                    source, config=config, ignore_mismatched_sizes=True, **dtype_option(self.dtype), **options)
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
                for rows in tqdm(row_batches(n, self.batch_size), desc="predicting", disable=not self._progress()):
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
                                                                       **dtype_option(estimator.dtype))
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
