"""Domain-adaptive continued masked-LM training (``promptlearn adapt``).

Turns a masked LM, or an encoder with no masked-LM head (e.g. a sentence-transformers model such as
all-MiniLM-L6-v2), into a masked LM adapted to some unlabelled text:

1. Load the checkpoint with ``AutoModelForMaskedLM``. Where the head is missing, transformers adds a
   freshly initialised one (seeded by ``seed``); its decoder stays *tied* to the input word embeddings,
   so only the small transform (dense + LayerNorm) and the output bias are new.
2. Phase 1 (``head_steps``): train the head alone, every other weight frozen, at ``head_learning_rate``.
   The encoder's representations are not disturbed by the gradients of a random head. Skipped by default
   when the checkpoint already has a trained head.
3. Phase 2 (``steps``): train all weights at ``learning_rate``.

Both phases are runs of :class:`promptlearn.pipeline.training.Trainer` (AdamW, linear warm-up and decay, gradient
clipping) with the standard BERT masking of ``transformers.DataCollatorForLanguageModeling`` (15 % of the
tokens; 80 % of those become the mask token, 10 % a random token, 10 % stay). The collator draws from
torch's global generator, which the Trainer reseeds from ``(seed, step)`` every step, so a run is
reproducible and a resumed run ends with the same weights as an uninterrupted one. Checkpoints go to
``<output>.partial/{head,full}/`` and are deleted once the final folder (a standard
``AutoModelForMaskedLM`` folder: safetensors weights, config, tokenizer, plus ``adapt.json`` recording the
recipe, the losses and the time) has been written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.artifacts import atomic_directory, atomic_write_text
from ..core.errors import ConfigError, DataError, PromptlearnError, WrongModelKindError
from ..models.precision import MixedPrecision

logger = logging.getLogger(__name__)

__all__ = ["adapt", "read_texts", "shared_unlabelled_texts", "SHARED_TASKS", "DEFAULT_HEAD_STEPS"]

#: Phase-1 steps when the checkpoint has no trained masked-LM head and ``head_steps`` is not given.
DEFAULT_HEAD_STEPS = 300
#: The LM-BFF tasks whose ``lm-bff/full/<task>/{train,dev}`` text :func:`shared_unlabelled_texts` gathers.
SHARED_TASKS = ("SST-2", "sst-5", "mr", "cr", "subj", "trec")
SUMMARY_NAME = "adapt.json"
_TEXT_SUFFIXES = (".txt", ".text")


# ------------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------------


def _clean(texts: Iterable[str]) -> list[str]:
    """Strip each text; drop empty ones and exact duplicates (the first occurrence keeps its place)."""
    return list(dict.fromkeys(t.strip() for t in texts if t is not None and t.strip()))


def _subset(texts: list[str], max_texts: int | None, seed: int) -> list[str]:
    """A seeded subset of ``max_texts`` texts in their original order (a prefix of one permutation)."""
    if max_texts is None or max_texts >= len(texts):
        return texts
    if max_texts < 1:
        raise ConfigError(f"max_texts must be >= 1 (or None), got {max_texts}")
    keep = sorted(np.random.default_rng(seed).permutation(len(texts))[:max_texts].tolist())
    return [texts[i] for i in keep]


def read_texts(paths: str | os.PathLike | Sequence[str | os.PathLike], *, column: str | None = None,
               max_texts: int | None = None, seed: int = 0) -> list[str]:
    """Unlabelled texts from files: ``.txt`` (one text per line) or ``.csv`` / ``.tsv`` / ``.jsonl`` (the
    ``column`` field; default ``text``, or the file's only field besides ``label``).

    Texts are stripped; empty ones and exact duplicates (across all files) are dropped. ``max_texts`` keeps a
    seeded subset (``seed``) in the original order.
    """
    from ..io.readers import read_examples

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    texts: list[str] = []
    for path in map(Path, paths):
        if path.suffix.lower() in _TEXT_SUFFIXES:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raise DataError(f"text file not found: {path}") from None
            except OSError as exc:
                raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
            try:
                texts.extend(raw.decode("utf-8-sig").splitlines())
            except UnicodeDecodeError as exc:
                raise DataError(f"{path} is not UTF-8 text ({exc})") from None
            continue
        examples, _ = read_examples(path)
        fields = list(dict.fromkeys(k for example in examples for k in example))
        name = column or ("text" if "text" in fields or len(fields) != 1 else fields[0])
        if name not in fields:
            raise DataError(f"{path} has no column {name!r}; columns: {', '.join(fields) or 'none'}; "
                            "name the text column (--column)")
        texts.extend(example.get(name, "") for example in examples)
    return _subset(_clean(texts), max_texts, seed)


def shared_unlabelled_texts(root: str | os.PathLike | None = None, *, include_dev: bool = True,
                            exclude_test_duplicates: bool = True) -> list[str]:
    """The unlabelled in-domain text of the shared data folder, for :func:`adapt`.

    Gathers the sentences of LM-BFF's full training data, ``lm-bff/full/<task>/train`` and (with
    ``include_dev``) ``lm-bff/full/<task>/dev`` for SST-2, SST-5, MR, CR, Subj and TREC (every text field,
    so both sentences of a pair task), and the descriptions of ``ag_news/train_pool.csv``. The ``dev``
    files are held-out tenths of the original training sets, disjoint from LM-BFF's test sets; using them
    unlabelled is legitimate, but pass ``include_dev=False`` if you select models on them.

    Never read: any test split (``lm-bff/k-shot/*/*/test.*``, ``ag_news/test.csv``) and
    ``glue-sst2/dev.tsv`` (it *is* LM-BFF's SST-2 test set). But the tasks share text: SST-2, SST-5, MR and
    Subj all come from Rotten Tomatoes snippets, so one task's training set holds another task's *test*
    sentences (measured: 385 SST-2, 483 SST-5 and 683 Subj test sentences are in MR's train/dev files, 618
    MR test sentences in Subj's, ...; 2,493 texts in all, plus 10 TREC questions, 2 CR reviews and 16 AG News
    descriptions that repeat within a task). Training on those would leak the test sets into the model, so
    ``exclude_test_duplicates`` (the default) drops every text that occurs verbatim (after stripping) in
    any of these tasks' test sets. That comparison is the only use of the test files (the k-shot
    ``test`` files, whose SST-2 one holds the sentences of ``glue-sst2/dev.tsv``, and ``ag_news/test.csv``).

    Texts are stripped and exact duplicates dropped, in a fixed order (task by task, then AG News).
    """
    from ..io.tasks import _root, load_ag_news, load_lmbff_full, task_id

    base = _root(root)
    splits = ("train", "dev") if include_dev else ("train",)
    texts: list[str] = []
    for task in SHARED_TASKS:
        for split in splits:
            examples, _ = load_lmbff_full(task, split, root=base)
            texts.extend(value for example in examples for value in example.values())
    examples, _ = load_ag_news("train_pool", root=base)
    texts.extend(example["description"] for example in examples)
    texts = _clean(texts)
    if exclude_test_duplicates:
        from ..io.tasks import LMBFF_TASK_DIRS, load_lmbff

        test: set[str] = set()
        for task in SHARED_TASKS:
            folder = base / "lm-bff" / "k-shot" / LMBFF_TASK_DIRS[task_id(task)]
            seeds = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
            if not seeds:
                raise DataError(f"no LM-BFF k-shot folders in {folder}: cannot exclude the {task} test texts "
                                "(pass exclude_test_duplicates=False to skip this check)")
            for seed_folder in seeds:
                examples, _ = load_lmbff(seed_folder, "test")
                test.update(v.strip() for example in examples for v in example.values())
        examples, _ = load_ag_news("test", root=base)
        test.update(example["description"].strip() for example in examples)
        before = len(texts)
        texts = [t for t in texts if t not in test]
        logger.info("dropped %d texts that also occur in a test set", before - len(texts))
    return texts


# ------------------------------------------------------------------------------------------------
# Adaptation
# ------------------------------------------------------------------------------------------------


def _check_options(head_steps: int | None, steps: int, learning_rate: float, head_learning_rate: float,
                   batch_size: int, max_length: int, mlm_probability: float, seed: int, checkpoint_every: int,
                   warmup_ratio: float) -> None:
    for name, value in (("steps", steps), ("head_steps", head_steps)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    for name, value in (("learning_rate", learning_rate), ("head_learning_rate", head_learning_rate)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be > 0, got {value!r}")
    for name, value in (("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if not isinstance(max_length, int) or max_length < 4:
        raise ConfigError(f"max_length must be an integer >= 4, got {max_length!r}")
    if not 0 < mlm_probability < 1:
        raise ConfigError(f"mlm_probability must be in (0, 1), got {mlm_probability!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    if not 0 <= warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {warmup_ratio!r}")


def _load(model: str, seed: int, where: str, dtype: Any = None) -> tuple[Any, Any, list[str]]:
    """(model, tokenizer, missing head keys); refuses causal LMs and tokenizers without a mask token."""
    import torch
    from transformers import (MODEL_FOR_MASKED_LM_MAPPING, AutoConfig, AutoModelForMaskedLM,
                              AutoTokenizer)

    from ..models.loader import _not_found_message, model_dtype, resolve

    source, gguf = resolve(model)
    if gguf:
        raise WrongModelKindError(f"{where} is a GGUF file, i.e. a causal LM; adapt trains masked LMs and "
                                  "encoders (BERT, RoBERTa, MiniLM, ...)")
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        from ..core.errors import ModelLoadError

        raise ModelLoadError(_not_found_message(model, source, exc)) from None
    architectures = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) \
            or getattr(config, "is_decoder", False) or type(config) not in MODEL_FOR_MASKED_LM_MAPPING:
        kind = ", ".join(architectures) or config.model_type
        raise WrongModelKindError(f"{where} ({kind}) is a causal LM or has no masked-LM form; adapt trains masked "
                                  "LMs and encoders (BERT, RoBERTa, MiniLM, ...)")
    if tokenizer.mask_token is None:
        raise WrongModelKindError(f"{where}: the tokenizer has no mask token, so it cannot be trained as a masked LM")
    # The fresh head (if any) is initialised from torch's global generator: seed it, and leave it as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            network, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True,
                                                                 trust_remote_code=False,
                                                                 dtype=model_dtype(dtype) or torch.float32)
        except ValueError as exc:
            raise WrongModelKindError(f"{where} cannot be loaded as a masked LM: {str(exc).splitlines()[0]}") from None
    head_ids = {id(p) for p in _head_parameters(network)}
    names = dict(network.named_parameters(remove_duplicate=False))
    prefix = f"{network.base_model_prefix}."
    missing, other = [], []
    for key in sorted(info.get("missing_keys", ())):
        if key.startswith(prefix):
            other.append(key)
        elif key not in names or id(names[key]) in head_ids:  # (a decoder tied to the embeddings is not missing)
            missing.append(key)
    if other:
        logger.warning("%s: %d encoder weights are missing and were initialised at random: %s", where, len(other),
                       ", ".join(other[:4]))
    return network, tokenizer, missing


def _head_parameters(model: Any) -> list[Any]:
    """The masked-LM head's own parameters: those outside the base model (a decoder tied to the word
    embeddings belongs to the base model, so it is not among them)."""
    base = {id(p) for p in model.base_model.parameters()}
    return [p for p in model.parameters() if id(p) not in base]


def _tie(model: Any, where: str) -> None:
    """Make the (fresh) decoder share the input word embeddings."""
    if model.get_output_embeddings().weight is model.get_input_embeddings().weight:
        return
    model.config.tie_word_embeddings = True
    model.tie_weights()
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        raise PromptlearnError(f"{where}: cannot tie the new masked-LM head's decoder to the word embeddings")


def _fast_head(model: Any) -> Any:
    """The module mapping hidden states to vocabulary logits when the model has one (BERT's ``cls``,
    RoBERTa's ``lm_head``, ALBERT's ``predictions``), else None."""
    output = model.get_output_embeddings()
    children = [c for _, c in model.named_children() if c is not model.base_model]
    if len(children) == 1 and any(m is output for m in children[0].modules()):
        return children[0]
    return None


class _MaskedLMLoss:
    """loss(texts): tokenize, mask with DataCollatorForLanguageModeling, and return the masked-LM loss.

    Vocabulary logits are computed at the masked positions only, and the rows run in length-sorted chunks
    (the loss is the same; saved are the 85 % of the output projection that a plain forward pass spends on
    unmasked tokens, and most of the padding: short and long texts mixed in a batch of 32 are half padding);
    models whose head cannot be called on hidden states alone use the plain ``model(**batch).loss``.
    """

    def __init__(self, model: Any, tokenizer: Any, max_length: int, mlm_probability: float, device: str) -> None:
        from transformers import DataCollatorForLanguageModeling

        self.model, self.tokenizer, self.max_length, self.device = model, tokenizer, max_length, device
        self.autocast: Any = contextlib.nullcontext  # set by adapt() per phase (MixedPrecision.autocast)
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability)
        self.head = _fast_head(model)
        self.rows_per_chunk = 8

    def batch(self, texts: Sequence[str]) -> dict[str, Any]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                 return_special_tokens_mask=True)
        rows = [{k: encoded[k][i] for k in encoded} for i in range(len(texts))]
        return {k: v.to(self.device) for k, v in self.collator(rows).items()}

    def full(self, batch: dict[str, Any]) -> Any:
        if not bool((batch["labels"] != -100).any()):
            return self._zero(batch)
        return self.model(**batch).loss

    def fast(self, batch: dict[str, Any]) -> Any:
        """The masked-LM loss with vocabulary logits at the masked positions only, the batch's rows run in
        chunks of similar length (sorted by length, each chunk cut to its own longest row), so that little
        compute goes to padding. The same loss as ``full``: the mean over all masked tokens of the batch."""
        import torch.nn.functional as F

        labels = batch["labels"]
        selected = labels != -100
        count = int(selected.sum())
        if count == 0:  # no token masked: a zero loss through the head (the encoder may be frozen in phase 1)
            return self._zero(batch)
        mask = batch.get("attention_mask")
        lengths = mask.sum(dim=1) if mask is not None else None
        order = lengths.sort(stable=True).indices.tolist() if lengths is not None else list(range(labels.shape[0]))
        total = None
        for start in range(0, len(order), self.rows_per_chunk):
            rows = order[start:start + self.rows_per_chunk]
            width = int(lengths[rows].max()) if lengths is not None else labels.shape[1]
            inputs = {k: v[rows, :width] for k, v in batch.items() if k != "labels"}
            hidden = self.model.base_model(**inputs)[0]
            chosen = selected[rows, :width]
            if count == 0 or not bool(chosen.any()):
                part = hidden.sum() * 0.0  # keeps the graph; no masked token in these rows
            else:
                logits = self.head(hidden[chosen])
                part = F.cross_entropy(logits.float(), labels[rows, :width][chosen], reduction="sum") / count
            total = part if total is None else total + part
        return total

    def _zero(self, batch: dict[str, Any]) -> Any:
        # No token was masked (tiny batches of short texts): a zero loss that keeps the graph, not a NaN.
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**inputs).logits.sum() * 0.0

    def check_fast_path(self, texts: Sequence[str]) -> None:
        """Use the masked-positions-only path only where it gives the plain forward pass's loss."""
        import torch

        if self.head is None:
            return
        was_training = self.model.training
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.manual_seed(0)
                self.model.eval()
                batch = self.batch(texts)
                expected, got = self.full(batch), self.fast(batch)
            if not torch.allclose(expected, got, rtol=1e-4, atol=1e-5):
                raise ValueError(f"{float(expected)} != {float(got)}")
        except Exception as exc:  # noqa: BLE001 - any failure means: use the plain path
            logger.info("masked-positions-only loss unavailable for %s (%s); using the full forward pass",
                        type(self.model).__name__, exc)
            self.head = None
        finally:
            self.model.train(was_training)

    def __call__(self, texts: Sequence[str]) -> Any:
        batch = self.batch(texts)
        with self.autocast():
            loss = self.fast(batch) if self.head is not None else self.full(batch)
        return loss.float()


def _texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _partial_dir(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def _tail_mean(history: list[dict[str, float]], n: int = 20) -> float | None:
    losses = [h["loss"] for h in history[-n:]]
    return round(float(np.mean(losses)), 6) if losses else None


def adapt(model: str | os.PathLike, texts: Sequence[str], output: str | os.PathLike, *,
          head_steps: int | None = None, steps: int = 2000, learning_rate: float = 1e-4,
          head_learning_rate: float = 1e-3, batch_size: int = 32, max_length: int = 128,
          mlm_probability: float = 0.15, warmup_ratio: float = 0.06, weight_decay: float = 0.01,
          checkpoint_every: int = 100, seed: int = 0, resume: bool = False, overwrite: bool = False,
          device: str | None = None, dtype: str | None = None,
          show_progress: bool | None = None) -> dict[str, Any]:
    """Continue masked-LM training of ``model`` on ``texts`` and save a masked-LM folder to ``output``.

    model: hub id, local folder or short name (``minilm``) of a masked LM or of an encoder without a
        masked-LM head (then a head tied to the word embeddings is added and trained first).
    head_steps: phase-1 steps, head only (default: ``DEFAULT_HEAD_STEPS`` when the head is missing, else 0);
        at ``head_learning_rate``. steps: phase-2 steps, all weights, at ``learning_rate``.
    batch_size, max_length: texts per step and their token limit (longer texts are truncated).
    warmup_ratio, weight_decay: AdamW schedule of each phase (linear warm-up, then linear decay to 0).
    checkpoint_every: steps between checkpoints in ``<output>.partial/``; ``resume=True`` continues from them
        (the same model, texts and options are required). ``overwrite=True`` replaces an existing ``output``
        and discards an interrupted run's checkpoints.
    seed: the fresh head's initialisation, the order of the texts and the masks (phase 2 uses ``seed + 1``).
    device, dtype: where it trains and the weights' dtype (default float32); ``bfloat16`` trains with float32
        master weights under autocast (:mod:`promptlearn.models.precision`) and saves a bfloat16 model.

    Returns a summary (also written to ``output/adapt.json``): steps, seconds, first and final losses.
    Raises WrongModelKindError for causal LMs, DataError for no texts, PromptlearnError when ``output`` exists.
    """
    from ..models.loader import dtype_name, resolve_device
    from ..pipeline.training import Trainer, TrainingConfig

    _check_options(head_steps, steps, learning_rate, head_learning_rate, batch_size, max_length, mlm_probability,
                   seed, checkpoint_every, warmup_ratio)
    if isinstance(texts, (str, bytes)):
        raise ConfigError("texts must be a sequence of strings, not one string (use read_texts for files)")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError("no texts to train on: give at least one non-empty text")
    output = Path(output)
    partial = _partial_dir(output)
    if output.exists() and not overwrite:
        raise PromptlearnError(f"{output} already exists; choose another output folder or pass overwrite=True "
                               "(--overwrite)")
    device = resolve_device(device)
    where = f"model {str(model)!r}"
    started = time.perf_counter()
    network, tokenizer, missing = _load(str(model), seed, where, dtype)
    head_added = bool(missing)
    if head_added:
        _tie(network, where)
        logger.warning("%s has no masked-LM head (missing: %s); added a fresh one with its decoder tied to the word "
                       "embeddings", where, ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else ""))
    if head_steps is None:
        head_steps = DEFAULT_HEAD_STEPS if head_added else 0
    elif head_added and head_steps == 0:
        logger.warning("head_steps=0: the new masked-LM head starts training together with the encoder")
    if head_steps == 0 and steps == 0:
        raise ConfigError("nothing to do: head_steps and steps are both 0")
    limit = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else \
        getattr(network.config, "max_position_embeddings", max_length)
    effective_length = min(max_length, limit)
    if effective_length < max_length:
        logger.info("max_length %d exceeds the model's window; using %d", max_length, effective_length)

    run = {"model": str(model), "texts": len(texts), "texts_sha256": _texts_digest(texts), "head_added": head_added,
           "head_steps": head_steps, "steps": steps, "learning_rate": learning_rate,
           "head_learning_rate": head_learning_rate, "batch_size": batch_size, "max_length": effective_length,
           "mlm_probability": mlm_probability, "warmup_ratio": warmup_ratio, "weight_decay": weight_decay,
           "seed": seed, "dtype": dtype_name(dtype)}
    run_file = partial / "run.json"
    resumed = False
    from ..models.distributed import barrier, is_main_process

    main_process = is_main_process()
    if partial.exists():
        if resume and run_file.is_file():
            try:
                saved = json.loads(run_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise PromptlearnError(f"cannot read {run_file}: {exc}") from None
            changed = sorted(k for k in run if saved.get(k) != run[k])
            if changed:
                raise PromptlearnError(f"cannot resume from {partial}: it was started with other "
                                       f"{', '.join(changed)}; resume with the same model, texts and options, or "
                                       "pass overwrite=True (--overwrite) to start over")
            logger.info("resuming from %s", partial)
            resumed = True
        elif resume or overwrite:
            if main_process:
                shutil.rmtree(partial)
        else:
            raise PromptlearnError(f"{partial} holds the checkpoints of an interrupted run; pass resume=True "
                                   "(--resume) to continue it, or overwrite=True (--overwrite) to start over")
    if main_process:  # several processes (accelerate launch): the main one writes, the others wait for it
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_file, json.dumps(run, indent=2) + "\n")
    barrier()

    network.to(device)
    loss = _MaskedLMLoss(network, tokenizer, effective_length, mlm_probability, device)
    loss.check_fast_path(texts[:8])
    summary: dict[str, Any] = {**run, "output": str(output), "device": device, "resumed": resumed}
    phases = [("head", head_steps, head_learning_rate, seed, "adapt: masked-LM head"),
              ("full", steps, learning_rate, seed + 1, "adapt: all weights")]
    for name, n_steps, rate, phase_seed, description in phases:
        if n_steps == 0:
            summary[f"{name}_seconds"], summary[f"{name}_loss"], summary[f"{name}_first_loss"] = 0.0, None, None
            summary[f"{name}_history"] = []
            continue
        network.requires_grad_(name == "full")
        if name == "head":
            for parameter in _head_parameters(network):
                parameter.requires_grad_(True)
        config = TrainingConfig(learning_rate=rate, max_steps=n_steps, batch_size=batch_size,
                                warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                                checkpoint_every=checkpoint_every, seed=phase_seed)
        trainer = Trainer(network, lambda indices: loss([texts[i] for i in indices]), len(texts), config,
                          checkpoint_dir=partial / name, show_progress=show_progress, description=description)
        phase_start = time.perf_counter()
        with MixedPrecision(network) as precision:
            loss.autocast = precision.autocast
            result = trainer.train(resume=resume)
        losses = [h["loss"] for h in result.history]
        summary[f"{name}_seconds"] = round(time.perf_counter() - phase_start, 2)
        summary[f"{name}_first_loss"] = losses[0] if losses else None
        summary[f"{name}_loss"] = _tail_mean(result.history)
        summary[f"{name}_history"] = losses
        logger.info("%s: %d steps, final loss %s, %.1f s", description, result.steps, summary[f"{name}_loss"],
                    summary[f"{name}_seconds"])
    network.requires_grad_(True)
    network.eval()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    if main_process:
        with atomic_directory(output, overwrite=overwrite) as tmp:
            network.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            atomic_write_text(tmp / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
        shutil.rmtree(partial, ignore_errors=True)
        logger.info("wrote the adapted masked LM to %s", output)
    barrier()
    return summary
