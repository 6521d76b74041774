"""PromptClassifier: zero-shot prompt-based classification in the scikit-learn manner.

The constructor only stores configuration; the model is loaded on first use. ``predict_proba``
renders each example with the template, scores the verbalizer's words with a masked- or causal-LM
scorer, optionally calibrates, and returns class probabilities in the verbalizer's class order.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..io.artifacts import atomic_directory, atomic_write_text, save_model_folder
from ..core.calibration import (CONTENT_FREE, content_free_examples, content_free_inputs, content_free_prior,
                          contextual_calibration, log_normalize)
from ..core.checks import check_param_types
from ..core.errors import ChatTemplateError, ConfigError, DataError, DemonstrationError, PromptlearnError
from .saved_folders import recorded_model_name
from ..models.loader import (LoadedModel, detect_kind, dtype_name, load_model, model_dtype, prepare_tokenizer,
                     resolve_device)
from ..models.precision import MixedPrecision
from ..scorer import Scorer, make_scorer
from ..core.template import Prompt, Template
from ..core.verbalizer import Verbalizer

logger = logging.getLogger(__name__)

FORMAT = "promptlearn.PromptClassifier"
#: Padded tokens per training forward/backward pass on a CPU when ``train_tokens_per_pass`` is None: at most
#: ~0.6 GiB of activations for SmolLM2-135M (1.25 MiB per token, measured). SST-2-length batches of 8 stay whole
#: (splitting them measured no lower); 8 prompts of 413 tokens peak at 3.7 GiB instead of 7.5 GiB.
DEFAULT_TRAIN_TOKENS_PER_PASS = 512
FORMAT_VERSION = 1
PROMPT_FILE = "prompt.safetensors"  # a continuous prompt's parameters (sources other than manual)
_SOFT_SLOT = re.compile(r"\[SOFT(?::(\d+))?\]")
# config.json's keys and their JSON types (checked on load: a damaged file gives one line, not a traceback)
_SAVED_SCHEMA = {"model": (str, type(None)), "base_model": (str, type(None)), "template": (dict,),
                 "verbalizer": (dict,), "params": (dict,), "prompt": (dict, type(None))}


def _learning_rate(source: str) -> float:
    from ..tuning import LEARNING_RATES

    return LEARNING_RATES[source]


def _soft_count(template: Template) -> int:
    """How many soft vectors the template's [SOFT] slots take in an example's own prompt."""
    try:
        prompt = template.render({field: "x" for field in template.fields})
    except PromptlearnError:  # a template whose logic needs real values: count the literal slots
        return sum(int(m.group(1) or 1) for m in _SOFT_SLOT.finditer(template.source))
    return sum(s.n_soft for s in prompt.segments if s.kind == "soft" and s.demo is None)


def as_examples(X: Any, fields: Iterable[str]) -> list[dict[str, Any]]:
    """Examples as dicts from strings, dicts, a pandas DataFrame or a ``datasets.Dataset``.

    A plain string fills the template's only field; templates with several fields need dicts.
    """
    if isinstance(X, (str, Mapping)):
        X = [X]
    if hasattr(X, "to_dict") and hasattr(X, "columns"):  # pandas DataFrame
        return X.to_dict(orient="records")
    if hasattr(X, "column_names") and hasattr(X, "to_list"):  # datasets.Dataset
        return list(X.to_list())
    fields = sorted(fields)
    examples = []
    for position, item in enumerate(X):
        if isinstance(item, Mapping):
            examples.append(dict(item))
        elif isinstance(item, str):
            if len(fields) != 1:
                raise DataError(f"item {position} is a plain string, but the template uses the fields {fields}; "
                                "pass dicts (or a DataFrame) with those keys")
            examples.append({fields[0]: item})
        else:
            raise DataError(f"item {position} is a {type(item).__name__}; pass strings, dicts, a pandas DataFrame "
                            "or a datasets.Dataset")
    return examples


def soft_targets(y: Any, n_classes: int | None = None) -> np.ndarray | None:
    """``y`` as soft targets (a float array ``[n_examples, n_classes]`` of class probabilities) when it is
    two-dimensional, else ``None`` (``y`` holds hard labels). Used by distillation (``PromptEnsemble.distill``):
    ``fit(X, probabilities)`` trains with cross-entropy against the probabilities."""
    if y is None or isinstance(y, (str, bytes, Mapping)):
        return None
    try:
        if np.ndim(y) != 2:
            return None
        targets = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):  # ragged or non-numeric: not soft targets; the label checks will explain
        return None
    if n_classes is not None and targets.shape[1] != n_classes:
        raise DataError(f"soft targets have {targets.shape[1]} columns but there are {n_classes} classes; "
                        "give one probability per class, in class order")
    if targets.shape[1] < 2:
        raise DataError(f"soft targets need one column per class (at least two), got shape {targets.shape}")
    if not np.isfinite(targets).all() or (targets < 0).any():
        raise DataError("soft targets must be finite, non-negative class probabilities")
    sums = targets.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        worst = int(np.abs(sums - 1.0).argmax())
        raise DataError(f"soft targets must sum to 1 over the classes; row {worst} sums to {sums[worst]:.6g}")
    return targets / sums[:, None]


class _Same:
    """A cache-key element equal only to a key holding the very same object (e.g. a demonstration pool)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def _spec_key(spec: Any) -> Any:
    """A cache key that changes when a template/verbalizer spec changes (dicts compared by content)."""
    if isinstance(spec, (str, os.PathLike)):
        return ("path-or-text", str(spec))
    if isinstance(spec, Mapping):
        return ("mapping", json.dumps(spec, sort_keys=False, default=str))
    return ("object", id(spec))


#: Builds the lazily loaded state (model, scorer) once when several threads share classifiers; one lock for the
#: process, not one per classifier, so that classifiers stay picklable and concurrent first loads of one model
#: path do not race inside transformers.
_LAZY_STATE = threading.RLock()


class PromptClassifier(ClassifierMixin, BaseEstimator):
    """Classify text by asking a language model to fill a template's ``[MASK]`` with label words.

    Parameters
    ----------
    model: a hub id, local folder, ``.gguf`` path, short name (``smollm2``), or a loaded
        ``transformers`` model (then pass ``tokenizer`` too).
    template: a :class:`Template`, a file, a shipped name (``sst2/it_was``) or Jinja text with ``[MASK]``.
    verbalizer: a :class:`Verbalizer`, a dict, a file or a shipped name (``sst2``).
    calibrate: apply contextual calibration with the ``content_free`` inputs.
    multi_token: ``parallel`` or ``left_to_right`` decoding of multi-token words (masked LMs).
    after_mask: causal LMs only: ``drop`` the text after ``[MASK]`` or ``score`` it with each word.
    aggregation: how several words of one class combine: ``mean`` (of probabilities), ``max``, ``sum``.
    shortenable: the fields truncation may shorten (default: all the template's fields).
    max_length: the token budget of one prompt (default: the model's window).
    device: ``cpu``, ``cuda``, ``cuda:1``, ``mps`` ... (default: ``$PROMPTLEARN_DEVICE``, else cuda when present).
    dtype: the model's weights: ``float32``, ``bfloat16``, ``float16`` or ``auto`` (the checkpoint's own);
        default: as loaded (float32 for a name, untouched for a model object). Scores are float32 whatever
        the dtype; :meth:`fit` trains a bfloat16 model with float32 master weights under autocast and refuses
        float16 (see :mod:`promptlearn.models.precision`).

    Training (:meth:`fit`, prompt-based fine-tuning as PET / LM-BFF): ``learning_rate``, ``epochs`` or
    ``max_steps`` (optimizer steps), ``train_batch_size``, ``gradient_accumulation_steps``,
    ``warmup_ratio``, ``weight_decay``; ``trainable`` (``all``, ``no_embeddings``, ``bottom_frozen:N``,
    ``top:N``); ``mlm_weight`` (PET's auxiliary language-model loss on unlabelled text:
    ``(1 - mlm_weight) * CE + mlm_weight * LM``; PET used 1e-4; 0 turns it off, the default);
    ``eval_every`` / ``patience`` (steps between dev evaluations, and how many without gain stop
    training; the best dev accuracy's weights are kept); ``checkpoint_dir``, ``checkpoint_every`` and
    ``checkpoint_minutes`` (atomic checkpoints for ``fit(..., resume=True)``: at every ``checkpoint_every``
    steps (default: every evaluation), every ``checkpoint_minutes`` of wall-clock time (default 10; None: off),
    at the end, and when Ctrl-C or SIGTERM stops training, which then raises
    :class:`~promptlearn.pipeline.training.TrainingInterrupted`); ``log_every`` (a progress line to the
    ``promptlearn.pipeline.training`` logger every N steps or 30 s, whichever first; None: every 30 s only);
    ``train_tokens_per_pass`` (a training batch whose examples hold more tokens than this, padded, is computed
    in several forward/backward passes whose gradients add up to the batch's: the activations kept for the
    backward pass, ~1.25 MiB per token for SmolLM2-135M, stay bounded whatever the texts' length; None: 512 on
    a CPU, no limit on a GPU; 0: no limit); ``seed``.

    In-context demonstrations (:mod:`promptlearn.pipeline.demonstrations`): ``demos`` (per class; 0: none) labelled
    examples from ``demo_pool`` (``(X, y)``; by default :meth:`fit`'s training data), rendered with the same
    template and their class's first label word: after the example for a masked LM (LM-BFF), before it for a
    causal LM (a k-shot prompt, joined by ``demo_separator``). ``demo_selection``: ``random``, ``balanced``
    or ``similar`` (by cosine similarity of ``demo_encoder``'s sentence embeddings, ``minilm`` by default);
    ``demo_sets`` sets drawn with different seeds are ensembled (mean class log-probability). ``seed`` seeds
    the draws. ``chat_template``: wrap the prompt in the tokenizer's chat template as a user message (causal
    instruct models); the label word starts the assistant's reply. :meth:`fit` trains with demonstrations
    drawn from the pool at every step (never the example itself); with ``max_steps=0`` it trains nothing and
    only makes its ``(X, y)`` the pool (in-context learning, the weights untouched).

    Continuous prompts and lightweight fine-tuning (:mod:`promptlearn.tuning`): ``source`` — ``manual``
    (the template as written; :meth:`fit` trains the model's weights), ``soft`` (prompt tuning: the
    template's ``[SOFT]`` / ``[SOFT:n]`` slots are trainable embeddings; a template without slots gets
    ``[SOFT:n_tokens]`` in front), ``ptuning`` (those embeddings from an LSTM/MLP prompt encoder), ``deep``
    (P-tuning v2: key/value prefixes at every layer), ``lora`` / ``adapter`` (PEFT), ``bitfit`` (biases);
    ``source_options`` — a dict (or the source's config object, e.g. ``SoftPromptConfig``) of its options.
    With any source but ``manual`` the base model stays frozen and untouched, :meth:`fit` trains only the
    prompt's parameters (``trainable`` must stay ``all``), and :meth:`save` writes only those (plus the
    base model's name); :meth:`load` re-attaches them to the base model.
    """

    def __init__(self, model: Any = "smollm2", template: Any = None, verbalizer: Any = None, *,
                 tokenizer: Any = None, calibrate: bool = False, content_free: Sequence[str] = CONTENT_FREE,
                 multi_token: str = "parallel", after_mask: str = "drop", aggregation: str = "mean",
                 shortenable: Sequence[str] | None = None, batch_size: int = 16, max_length: int | None = None,
                 device: str | None = None, dtype: str | None = None, gguf_file: str | None = None,
                 trust_remote_code: bool = False,
                 show_progress: bool | None = None, learning_rate: float = 1e-5, epochs: float = 10.0,
                 max_steps: int | None = None, train_batch_size: int = 8, gradient_accumulation_steps: int = 1,
                 warmup_ratio: float = 0.0, weight_decay: float = 0.01, trainable: str = "all",
                 mlm_weight: float = 0.0, eval_every: int | None = None, patience: int | None = None,
                 checkpoint_dir: str | None = None, checkpoint_every: int | None = None,
                 checkpoint_minutes: float | None = 10.0, log_every: int | None = 10,
                 train_tokens_per_pass: int | None = None, seed: int = 0,
                 demos: int = 0, demo_pool: Any = None, demo_selection: str = "random", demo_sets: int = 1,
                 demo_separator: str | None = None, chat_template: bool = False, demo_encoder: Any = "minilm",
                 source: str = "manual", source_options: Any = None) -> None:
        self.model = model
        self.template = template
        self.verbalizer = verbalizer
        self.tokenizer = tokenizer
        self.calibrate = calibrate
        self.content_free = content_free
        self.multi_token = multi_token
        self.after_mask = after_mask
        self.aggregation = aggregation
        self.shortenable = shortenable
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.dtype = dtype
        self.gguf_file = gguf_file
        self.trust_remote_code = trust_remote_code
        self.show_progress = show_progress
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.max_steps = max_steps
        self.train_batch_size = train_batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.trainable = trainable
        self.mlm_weight = mlm_weight
        self.eval_every = eval_every
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.checkpoint_minutes = checkpoint_minutes
        self.log_every = log_every
        self.train_tokens_per_pass = train_tokens_per_pass
        self.seed = seed
        self.demos = demos
        self.demo_pool = demo_pool
        self.demo_selection = demo_selection
        self.demo_sets = demo_sets
        self.demo_separator = demo_separator
        self.chat_template = chat_template
        self.demo_encoder = demo_encoder
        self.source = source
        self.source_options = source_options

    # -- resolved configuration ----------------------------------------------------------------
    @property
    def template_(self) -> Template:
        if self.template is None:
            raise PromptlearnError("no template given; pass template= (a file, 'task/name' or Jinja text with [MASK])")
        key = (_spec_key(self.template), tuple(self.shortenable) if self.shortenable is not None else None,
               self.source, _spec_key(self.source_options) if isinstance(self.source_options, Mapping) else
               repr(self.source_options))
        if getattr(self, "_template_key", None) != key:
            template = Template.load(self.template, shortenable=self.shortenable)
            from ..tuning import DEFAULT_SOFT_TOKENS, SOFT_SOURCES

            if self.source in SOFT_SOURCES and not _SOFT_SLOT.search(template.source):
                # Prompt tuning on a template without soft slots: the soft prompt goes in front (Lester et al.).
                n = self._source_config().n_tokens or DEFAULT_SOFT_TOKENS
                template = Template(f"[SOFT:{n}] " + template.source, name=template.name,
                                    shortenable=self.shortenable)
            self._template_cache = template
            self._template_key = key
        return self._template_cache

    @property
    def verbalizer_(self) -> Verbalizer:
        if self.verbalizer is None:
            raise PromptlearnError("no verbalizer given; pass verbalizer= (a file, a shipped name or a dict)")
        key = (_spec_key(self.verbalizer), self.aggregation)
        if getattr(self, "_verbalizer_key", None) != key:
            self._verbalizer_cache = Verbalizer.load(self.verbalizer, aggregation=self.aggregation)
            self._verbalizer_key = key
        return self._verbalizer_cache

    @property
    def classes_(self) -> np.ndarray:
        return np.array(self.verbalizer_.classes, dtype=object)

    @property
    def model_(self) -> LoadedModel:
        """The loaded model (loaded on first use, once, under the lazy-state lock: threads may share a classifier)."""
        if getattr(self, "_loaded", None) is None or self._loaded_from != _spec_key(self.model):
            with _LAZY_STATE:
                if getattr(self, "_loaded", None) is None or self._loaded_from != _spec_key(self.model):
                    self._loaded = self._load_model()
                    self._loaded_from = _spec_key(self.model)
                    self._fitted = False
                    self._scorer_cache = None
                    self._prior_cache = None
        return self._loaded

    def _load_model(self) -> LoadedModel:
        if isinstance(self.model, (str, os.PathLike)):
            return load_model(str(self.model), gguf_file=self.gguf_file, device=self.device,
                              dtype=model_dtype(self.dtype), trust_remote_code=self.trust_remote_code)
        if self.tokenizer is None:
            raise PromptlearnError("a model object needs its tokenizer: pass tokenizer= as well")
        where = f"model object {type(self.model).__name__}"
        kind = detect_kind(self.model.config, where)
        prepare_tokenizer(self.tokenizer, kind, where)
        if self.device:  # a model object stays where the caller put it unless a device is asked for
            self.model.to(resolve_device(self.device))
        if model_dtype(self.dtype) not in (None, "auto"):  # ... and in its dtype unless one is asked for
            self.model.to(model_dtype(self.dtype))
        self.model.eval()
        return LoadedModel(self.model, self.tokenizer, kind, getattr(self.model, "name_or_path", "") or where)

    @property
    def scorer_(self) -> Scorer:
        check_param_types(self)  # a wrong type is one ConfigError, before the model is loaded
        loaded = self.model_
        options = (self.multi_token, self.after_mask, self.batch_size, self.max_length, self.show_progress)
        with _LAZY_STATE:
            if getattr(self, "_scorer_cache", None) is None or self._scorer_options != options:
                self._scorer_cache = make_scorer(loaded.kind, loaded.model, loaded.tokenizer,
                                                 multi_token=self.multi_token, after_mask=self.after_mask,
                                                 batch_size=self.batch_size, max_length=self.max_length,
                                                 show_progress=self.show_progress)
                self._scorer_options = options
                self._prior_cache = None
            self._scorer_cache.prompt_source = self._prompt_set()
            return self._scorer_cache

    # -- continuous prompts ------------------------------------------------------------------------
    def _source_config(self) -> Any:
        from ..tuning import source_config

        return source_config(self.source, self.source_options)

    @property
    def prompt_(self) -> Any:
        """The prompt's trainable module (a :class:`~promptlearn.tuning.PromptModule`; None for ``manual``),
        made for the loaded model on first use (initialised from ``seed``, or the saved parameters)."""
        config = self._source_config()
        if config.source == "manual":
            return None
        loaded = self.model_
        key = (id(loaded), repr(config.to_dict()), self.template_, self.verbalizer_, self.seed)
        if getattr(self, "_prompt_key", None) != key:
            self._prompt_cache = self._build_prompt(loaded, config)
            self._prompt_key = key
            self._prior_cache = None
            self._demo_prior_key = None
        return self._prompt_cache

    def _prompt_set(self) -> Any:
        module = self.prompt_
        if module is None:
            return None
        if getattr(self, "_prompt_set_cache", None) is None or self._prompt_set_cache.modules[0] is not module:
            from ..tuning import PromptSet

            self._prompt_set_cache = PromptSet([module])
        return self._prompt_set_cache

    def _build_prompt(self, loaded: LoadedModel, config: Any) -> Any:
        from ..tuning import SOFT_SOURCES, BuildContext, build_prompt

        template, verbalizer = self.template_, self.verbalizer_
        n_soft = _soft_count(template)
        if n_soft and config.source not in SOFT_SOURCES:
            raise ConfigError(f"{template.where} has [SOFT] slots, which only source='soft' or 'ptuning' fills "
                              f"(source={config.source!r})")
        if config.source in SOFT_SOURCES and config.n_tokens is not None and config.n_tokens != n_soft:
            raise ConfigError(f"n_tokens={config.n_tokens} but {template.where} has {n_soft} soft vectors in its "
                              "[SOFT] slots; drop n_tokens or make them agree")
        words = make_scorer(loaded.kind, loaded.model, loaded.tokenizer)  # tokenizes label words in context
        label_ids = [words.word_ids(word, ".", " ") for class_words in verbalizer.words for word in class_words]
        context = BuildContext(loaded.model, loaded.tokenizer, loaded.kind, n_soft=n_soft, label_token_ids=label_ids,
                               n_classes=len(verbalizer), seed=self.seed)
        module = build_prompt(config, context)
        state = getattr(self, "_pending_prompt_state", None)
        if state is not None:
            module.load_prompt_state(state)
            self._pending_prompt_state = None
        module.eval()
        return module

    # -- demonstrations and chat templates ---------------------------------------------------------
    def _uses_context(self) -> bool:
        """Whether prompts get demonstrations or a chat template (else the plain, unchanged path)."""
        if isinstance(self.demos, bool) or not isinstance(self.demos, (int, np.integer)) or self.demos < 0:
            raise ConfigError(f"demos must be a number of demonstrations per class >= 0, got {self.demos!r}")
        if isinstance(self.demo_sets, bool) or not isinstance(self.demo_sets, (int, np.integer)) or self.demo_sets < 1:
            raise ConfigError(f"demo_sets must be >= 1, got {self.demo_sets!r}")
        return self.demos > 0 or bool(self.chat_template)

    def _pool(self) -> Any:
        """The demonstration pool in use: ``demo_pool``, else the training data of :meth:`fit`."""
        return self.demo_pool if self.demo_pool is not None else getattr(self, "demo_pool_", None)

    @property
    def demo_selector_(self) -> Any:
        """The :class:`~promptlearn.pipeline.demonstrations.DemonstrationSelector` of this configuration (None: no demos)."""
        from ..pipeline.demonstrations import DemonstrationSelector, make_encoder, read_pool

        if not self._uses_context() or not self.demos:
            return None
        pool = self._pool()
        if pool is None:
            raise DemonstrationError(f"demos={self.demos} needs labelled examples to draw demonstrations from: pass "
                                     "demo_pool=(X, y), or call fit(X, y) (its training data become the pool)")
        template, verbalizer, kind = self.template_, self.verbalizer_, self.model_.kind
        encoder_key = _spec_key(self.demo_encoder) if self.demo_selection == "similar" else None
        key = (_Same(pool), template, _spec_key(self.verbalizer), self.demos, self.demo_selection, self.seed, kind,
               encoder_key)
        if getattr(self, "_selector_key", None) != key:
            examples, labels = read_pool(pool, template, verbalizer)
            encoder = None
            if self.demo_selection == "similar":
                if self.demo_encoder is None:
                    raise DemonstrationError("demo_selection='similar' needs demo_encoder (a model name such as "
                                             "'minilm', or a callable texts -> vectors)")
                previous = getattr(self, "_encoder_cache", None)
                encoder = previous[1] if previous and previous[0] == encoder_key else make_encoder(
                    self.demo_encoder, self.device)
                self._encoder_cache = (encoder_key, encoder)
            self._selector_cache = DemonstrationSelector(
                examples, labels, len(verbalizer), template.fields, k=self.demos, selection=self.demo_selection,
                causal=kind == "causal", seed=self.seed, encoder=encoder, classes=verbalizer.classes)
            self._selector_key = key
            self._rendered_demos: dict[int, Any] = {}
            self._check_demo_lengths()
        return self._selector_cache

    def _check_demo_lengths(self) -> None:
        """Every pool example must fit the model's window as a demonstration on its own (else: which, how long)."""
        from ..pipeline.demonstrations import render_demonstration

        selector, scorer, verbalizer = self._selector_cache, self.scorer_, self.verbalizer_
        texts = [render_demonstration(self.template_, example, verbalizer.words[label][0], index)
                 for index, (example, label) in enumerate(zip(selector.examples, selector.labels))]
        texts = ["".join(s.text for s in segments) for segments in texts]
        lengths = [len(ids) for ids in scorer.tokenizer(texts, add_special_tokens=True)["input_ids"]] if texts else []
        too_long = [i for i, length in enumerate(lengths) if length > scorer.max_length]
        if too_long:
            from ..core.errors import DemonstrationTooLongError

            i = too_long[0]
            preview = texts[i] if len(texts[i]) <= 60 else texts[i][:60] + "..."
            raise DemonstrationTooLongError(
                f"demonstration pool example {i} (class {verbalizer.classes[selector.labels[i]]!r}, {preview!r}) is "
                f"{lengths[i]} tokens long as a demonstration, more than the model's window of {scorer.max_length} "
                f"tokens even on its own ({len(too_long)} pool example(s) are); shorten or remove it from the pool")

    def _context_parts(self) -> tuple[str, tuple[str, str] | None]:
        """(separator, chat wrapper or None) for the loaded model."""
        from ..pipeline.demonstrations import CAUSAL_SEPARATOR, chat_wrapper

        loaded = self.model_
        causal = loaded.kind == "causal"
        if self.chat_template and not causal:
            raise ChatTemplateError(f"chat_template=True needs a causal (instruct) LM; {loaded.name} is a "
                                    f"{loaded.kind} LM")
        chat = chat_wrapper(loaded.tokenizer, loaded.name) if self.chat_template else None
        separator = self.demo_separator
        if separator is None:
            sep = getattr(loaded.tokenizer, "sep_token", None)
            separator = CAUSAL_SEPARATOR if causal else (f"{sep} " if sep else " ")
        return separator, chat

    def _assemble(self, query: Prompt, demos: Sequence[int]) -> Prompt:
        """The example's prompt with the demonstrations ``demos`` (pool indices) and the chat template."""
        from ..pipeline.demonstrations import assemble, render_demonstration

        rendered = []
        if demos:
            selector = self.demo_selector_
            for index in demos:
                if index not in self._rendered_demos:
                    word = self.verbalizer_.words[selector.labels[index]][0]
                    self._rendered_demos[index] = render_demonstration(self.template_, selector.examples[index],
                                                                       word, index)
                rendered.append(self._rendered_demos[index])
        separator, chat = self._context_parts()
        return assemble(query, rendered, demos_first=self.model_.kind == "causal", separator=separator, chat=chat)

    def _demo_prompts(self, examples: Sequence[Mapping[str, Any]], set_index: int) -> list[Prompt]:
        """The examples' prompts with demonstration set ``set_index`` (and the chat template)."""
        template = self.template_
        queries = [template.render(example) for example in examples]
        selector = self.demo_selector_
        picks = selector.select(examples, set_index) if selector is not None else [()] * len(examples)
        return [self._assemble(query, pick) for query, pick in zip(queries, picks)]

    def render_prompts(self, X: Any) -> list[list[Prompt]]:
        """The prompts scored for ``X``: ``[demo set][example]`` (one set without demonstrations), each a
        :class:`~promptlearn.core.template.Prompt` whose ``text`` shows the demonstrations and ``demonstrations``
        their pool indices."""
        examples = as_examples(X, self.template_.fields)
        if not self._uses_context():
            return [[self.template_.render(example) for example in examples]]
        return [self._demo_prompts(examples, s) for s in range(self.demo_sets if self.demos else 1)]

    def _prior_prompts(self, demo_sets: Sequence[tuple[int, ...]]) -> tuple[list[tuple[int, ...]], list[Prompt]]:
        """The demonstration sets whose calibration prior is not cached yet, and their content-free prompts
        (every content-free input rendered with each such set, set by set)."""
        template = self.template_
        key = (template, self.verbalizer_, tuple(self.content_free), id(self.scorer_),
               getattr(self, "_selector_key", None), self.demo_separator, self.chat_template)
        if getattr(self, "_demo_prior_key", None) != key:
            self._demo_priors: dict[tuple[int, ...], np.ndarray] = {}
            self._demo_prior_key = key
        missing = list(dict.fromkeys(d for d in demo_sets if d not in self._demo_priors))
        if not missing:
            return [], []
        inputs = [template.render(e) for e in content_free_examples(template.fields, self.content_free)]
        return missing, [self._assemble(query, demos) for demos in missing for query in inputs]

    def _context_priors(self, demo_sets: Sequence[tuple[int, ...]], missing: Sequence[tuple[int, ...]],
                        scores: np.ndarray) -> np.ndarray:
        """Contextual calibration's prior for each prompt's demonstrations: the content-free inputs rendered
        with exactly those demonstrations (one prior per distinct set, cached); ``scores`` are those of
        :meth:`_prior_prompts`' prompts for the sets not cached yet (``missing``)."""
        if missing:
            for demos, block in zip(missing, scores.reshape(len(missing), -1, scores.shape[-1])):
                self._demo_priors[demos] = content_free_prior(block)
        return np.stack([self._demo_priors[d] for d in demo_sets])

    def _context_log_probs(self, examples: list[dict[str, Any]], calibrations: Sequence[bool]) -> list[np.ndarray]:
        """Class log-probabilities with demonstrations / a chat template, one array per entry of ``calibrations``
        (from one scoring pass): every demonstration set is scored (and, where calibrated, divided by its own
        prior), then the sets' log-probabilities are averaged and renormalised. The content-free prompts of a
        calibration are scored in the same call, so a causal LM computes the demonstrations they share with
        the example once (per-example sets: one context pass instead of two)."""
        n_sets = self.demo_sets if self.demos else 1
        prompts = [p for s in range(n_sets) for p in self._demo_prompts(examples, s)]
        demo_sets = [p.demonstrations for p in prompts]
        calibrating = any(calibrations)
        missing, prior_prompts = self._prior_prompts(demo_sets) if calibrating else ([], [])
        scores = self.scorer_.score(prompts + prior_prompts, self.verbalizer_)
        log_probs = log_normalize(scores[:len(prompts)])
        n_classes = len(self.verbalizer_)
        priors = self._context_priors(demo_sets, missing, scores[len(prompts):]) if calibrating else None
        out = []
        for calibrate in calibrations:
            variant = contextual_calibration(log_probs, priors) if calibrate else log_probs
            out.append(log_normalize(variant.reshape(n_sets, len(examples), n_classes).mean(axis=0)))
        return out

    # -- inference -------------------------------------------------------------------------------
    def _log_probs(self, X: Any, calibrate: bool) -> np.ndarray:
        return self._log_probs_variants(X, (calibrate,))[0]

    def _log_probs_variants(self, X: Any, calibrations: Sequence[bool]) -> list[np.ndarray]:
        """Class log-probabilities of ``X``, raw or calibrated per entry of ``calibrations``; one scoring pass."""
        template, verbalizer = self.template_, self.verbalizer_
        examples = as_examples(X, template.fields)
        if self._uses_context() and examples:
            return self._context_log_probs(examples, calibrations)
        prompts = [template.render(example) for example in examples]
        scores = self.scorer_.score(prompts, verbalizer)
        log_probs = log_normalize(scores) if len(examples) else np.zeros((0, len(verbalizer)))
        return [contextual_calibration(log_probs, self.content_free_prior()) if calibrate else log_probs
                for calibrate in calibrations]

    def raw_and_calibrated_log_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``predict_log_proba`` with ``calibrate=False`` and with ``calibrate=True``, from one scoring pass of
        ``X`` (calibration only adds the content-free inputs): for comparing the two at the cost of one."""
        raw, calibrated = self._log_probs_variants(X, (False, True))
        return raw, calibrated

    def content_free_prior(self) -> np.ndarray:
        """The prompt's class prior on content-free inputs (what calibration divides out).

        With demonstrations, the content-free inputs draw theirs like any example, and the prior is averaged
        over the demonstration sets; ``calibrate=True`` instead divides each prompt by the prior of its own
        demonstrations (the same for all with a causal LM's fixed sets)."""
        key = (self.template_, self.verbalizer_, tuple(self.content_free), id(self.scorer_), self.demos,
               _Same(self._pool()), self.demo_selection, self.demo_sets, self.demo_separator, self.chat_template,
               self.seed)
        if getattr(self, "_prior_cache", None) is None or self._prior_key != key:
            inputs = content_free_examples(self.template_.fields, self.content_free)
            self._prior_cache = content_free_prior(self._log_probs(inputs, calibrate=False))
            self._prior_key = key
        return self._prior_cache

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Class log-probabilities ``[n_examples, n_classes]``, classes in ``classes_`` order."""
        return self._log_probs(X, self.calibrate)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[n_examples, n_classes]``, classes in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class name of each example."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)] if len(self.classes_) else np.array([])

    def score(self, X: Any, y: Sequence[Any], sample_weight: Any = None) -> float:
        """Accuracy; labels are class names or class indices."""
        from sklearn.metrics import accuracy_score

        truth = self.verbalizer_.label_indices(y)
        predicted = self.predict_proba(X).argmax(axis=1)
        return float(accuracy_score(truth, predicted, sample_weight=sample_weight))

    # -- training ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Sequence[Any], *, unlabeled: Any = None, dev: tuple[Any, Sequence[Any]] | None = None,
            resume: bool = False) -> PromptClassifier:
        """Prompt-based fine-tuning: cross-entropy over the verbalizer's class scores (PET / LM-BFF).

        ``y``: labels (class names or indices), or soft targets: an array ``[n_examples, n_classes]`` of class
        probabilities in ``classes_`` order (PET distillation), trained with cross-entropy against them.
        ``unlabeled``: examples for the auxiliary language-model loss (with ``mlm_weight > 0``).
        ``dev``: ``(X_dev, y_dev)`` for evaluation every ``eval_every`` steps, early stopping and keeping
        the best weights. ``resume``: continue from the checkpoint in ``checkpoint_dir``.
        """
        check_param_types(self, fitting=True)
        import torch
        import torch.nn.functional as F

        from ..pipeline.training import Trainer, TrainingConfig, freeze, language_model_loss

        template, verbalizer = self.template_, self.verbalizer_
        examples = as_examples(X, template.fields)
        soft = soft_targets(y, len(verbalizer))  # None: hard labels (the unchanged path)
        labels = verbalizer.label_indices(y) if soft is None else list(soft.argmax(axis=1))
        if len(labels) != len(examples):
            raise DataError(f"{len(examples)} examples but {len(labels)} labels")
        missing = [c for i, c in enumerate(verbalizer.classes) if i not in set(labels)]
        if missing and soft is None:  # soft targets give every class some probability mass
            raise DataError(f"no training example for class(es) {missing}; every class needs at least one")
        prompts = [template.render(example) for example in examples]
        dev_prompts, dev_labels = None, None
        if dev is not None:
            dev_examples = as_examples(dev[0], template.fields)
            dev_labels = np.asarray(verbalizer.label_indices(dev[1]))
            dev_prompts = [template.render(example) for example in dev_examples]
        contextual = self._uses_context()
        if contextual and self.demos and self.demo_pool is None:  # LM-BFF: demonstrations from the training data
            from ..pipeline.demonstrations import pool_to_json, read_pool

            names = [verbalizer.classes[label] for label in labels]
            self.demo_pool_ = pool_to_json(*read_pool((examples, names), template, verbalizer), verbalizer)
        if contextual:
            self.demo_selector_, self._context_parts()  # check the pool and the chat template before training
        if self.max_steps == 0:  # in-context learning only: the labelled data become the pool, no weight changes
            if not (contextual and self.demos):
                raise ConfigError("max_steps=0 trains nothing; it is for in-context learning (demos > 0), where "
                                  "fit(X, y) only makes X, y the demonstration pool. Set max_steps >= 1 to train.")
            self.training_result_ = None  # the calibration priors are keyed by the pool: no cache to drop
            return self
        auxiliary = None
        if self.mlm_weight > 0:
            if unlabeled is None:
                raise DataError("mlm_weight > 0 needs unlabelled examples: fit(..., unlabeled=...)")
            auxiliary = [template.render(example) for example in as_examples(unlabeled, template.fields)]
        loaded, scorer = self.model_, self.scorer_
        module = self.prompt_
        if module is None:
            freeze(loaded.model, self.trainable)
        else:  # continuous prompt / PEFT / BitFit: the base model stays frozen, only the prompt trains
            if self.trainable != "all":
                raise ConfigError(f"trainable={self.trainable!r} chooses which model weights train; with "
                                  f"source={self.source!r} only the prompt's parameters do (leave trainable='all')")
            if self.mlm_weight > 0:
                raise ConfigError(f"mlm_weight > 0 (PET's auxiliary LM loss) trains the model's weights; it is not "
                                  f"available with source={self.source!r}")
            module.freeze_base()
            if self.learning_rate == 1e-5:
                logger.warning("learning_rate=1e-5 suits full fine-tuning; a %s prompt usually needs 1e-3 to 3e-2 (the "
                               "CLI's default for it: %g)", self.source, _learning_rate(self.source))
        precision = MixedPrecision(loaded.model if module is None else module)
        # Fixed prompts are tokenized once, not at every step (demonstrations change every step).
        encoded = None if contextual else scorer.encode_rows(prompts, verbalizer)
        split = self._pass_split(encoded, scorer) if auxiliary is None else None
        target = torch.as_tensor(labels, device=scorer.device)
        if soft is not None:  # cross_entropy takes class probabilities as targets too (float, [n, C])
            target = torch.as_tensor(soft, dtype=torch.float32, device=scorer.device)
        weight = float(self.mlm_weight)

        def loss_fn(indices: list[int]) -> torch.Tensor:
            if contextual:  # fresh demonstrations every step, drawn with the step's seeded torch generator
                set_index = int(torch.randint(2**31 - 1, ()).item()) if self.demos else 0
                batch = self._demo_prompts([examples[i] for i in indices], set_index)
            else:
                batch = [prompts[i] for i in indices]
            with precision.autocast():
                if encoded is None:
                    scores = scorer.class_log_scores(batch, verbalizer)
                else:
                    scores = scorer.class_log_scores(batch, verbalizer, rows=[encoded[i] for i in indices])
            loss = F.cross_entropy(scores.float(), target[indices])
            if auxiliary:
                picks = torch.randint(len(auxiliary), (len(indices),)).tolist()  # seeded per step by the trainer
                with precision.autocast():
                    lm = language_model_loss(loaded, scorer, [auxiliary[i] for i in picks])
                loss = (1 - weight) * loss + weight * lm
            return loss

        def evaluate() -> float:
            with precision.autocast():
                return evaluate_dev()

        def evaluate_dev() -> float:
            if contextual:
                predicted = self._context_log_probs(dev_examples, (False,))[0].argmax(axis=1)
            else:
                predicted = scorer.score(dev_prompts, verbalizer).argmax(axis=1)  # type: ignore[arg-type]
            return float((predicted == dev_labels).mean())

        config = TrainingConfig(
            learning_rate=self.learning_rate, epochs=self.epochs, max_steps=self.max_steps,
            batch_size=self.train_batch_size, gradient_accumulation_steps=self.gradient_accumulation_steps,
            warmup_ratio=self.warmup_ratio, weight_decay=self.weight_decay, eval_every=self.eval_every,
            patience=self.patience, checkpoint_every=self.checkpoint_every or self.eval_every, seed=self.seed,
            checkpoint_seconds=60.0 * self.checkpoint_minutes if self.checkpoint_minutes is not None else None)
        trainer = Trainer(loaded.model if module is None else module, loss_fn, len(prompts), config,
                          evaluate=evaluate if dev is not None else None, checkpoint_dir=self.checkpoint_dir,
                          show_progress=self.show_progress, log_every=self.log_every, split=split,
                          description="prompt-based fine-tuning" if module is None else f"{self.source} prompt")
        with precision:
            self.training_result_ = trainer.train(resume=resume)
        loaded.model.eval()
        if module is not None:
            module.eval()
        self._fitted = True
        self._prior_cache = None
        self._demo_prior_key = None
        return self

    def _pass_split(self, encoded: list[Any] | None, scorer: Scorer) -> Any:
        """The Trainer's ``split``: a batch's examples in consecutive parts of at most ``train_tokens_per_pass``
        padded tokens (at least one example each), from the encoded rows' lengths; None when there is no limit or
        the prompts are not encoded once (demonstrations are drawn anew at every step)."""
        budget = self.train_tokens_per_pass
        if budget is None:
            budget = DEFAULT_TRAIN_TOKENS_PER_PASS if scorer.device.type == "cpu" else 0
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
            raise ConfigError(f"train_tokens_per_pass must be a number of tokens >= 0 (0: no limit) or None, got "
                              f"{budget!r}")
        lengths = [getattr(row, "length", None) for row in encoded or ()]
        if not budget or not lengths or None in lengths:
            return None

        def split(indices: list[int]) -> list[list[int]]:
            parts: list[list[int]] = [[]]
            longest = 0
            for index in indices:
                wider = max(longest, lengths[index])
                if parts[-1] and wider * (len(parts[-1]) + 1) > budget:
                    parts.append([])
                    wider = lengths[index]
                parts[-1].append(index)
                longest = wider
            return parts

        return split

    # -- persistence -------------------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return bool(getattr(self, "_fitted", False)) and getattr(self, "_loaded", None) is not None

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a folder with ``config.json`` (and the model's safetensors weights when they were trained or
        the model was given as an object), atomically; :meth:`load` gives identical predictions."""
        directory = Path(directory)
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("model", "template", "verbalizer", "tokenizer", "trust_remote_code")}
        params["content_free"] = list(content_free_inputs(params["content_free"]))  # one string: one input
        params["shortenable"] = list(params["shortenable"]) if params["shortenable"] is not None else None
        params["dtype"] = dtype_name(params["dtype"])  # a torch.dtype is saved by its name
        params["demo_pool"] = None
        if self._pool() is not None:  # the pool is data: saved in config.json, so load() draws the same demonstrations
            from ..pipeline.demonstrations import pool_to_json, read_pool

            params["demo_pool"] = pool_to_json(*read_pool(self._pool(), self.template_, self.verbalizer_),
                                               self.verbalizer_)
        if not isinstance(params["demo_encoder"], (str, os.PathLike, type(None))):
            logger.warning("demo_encoder is a Python object and is not saved; pass demo_encoder= to load()")
            params["demo_encoder"] = None
        elif params["demo_encoder"] is not None:
            params["demo_encoder"] = recorded_model_name(params["demo_encoder"])
        module = self.prompt_
        if module is not None:  # a continuous prompt: its parameters and options, never the base model's weights
            params["source_options"] = {k: v for k, v in self._source_config().to_dict().items() if k != "source"}
            if not isinstance(self.model, (str, os.PathLike)):
                logger.warning("the base model is saved by its name only (%r); pass model= (and tokenizer=) to load() "
                               "if that name cannot be loaded", self.model_.name)
        config = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "model": (recorded_model_name(self.model) if isinstance(self.model, (str, os.PathLike))
                      and not self._is_fitted() else None),
            "base_model": (recorded_model_name(self.model) if isinstance(self.model, (str, os.PathLike))
                           else self.model_.name),
            "template": {"source": self.template_.source, "name": self.template_.name},
            "verbalizer": self.verbalizer_.to_dict(),
            "params": params,
        }
        if module is not None:
            config["model"] = config["base_model"]
            config["prompt"] = {"source": self.source, "file": PROMPT_FILE, "parameters": module.n_parameters()}
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            if module is not None:
                from safetensors.torch import save_file

                save_file(module.prompt_state(), str(tmp / PROMPT_FILE), metadata={"source": self.source})
            elif config["model"] is None:
                loaded = self.model_
                save_model_folder(loaded.model, loaded.tokenizer, tmp / "model")
            atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, **overrides: Any) -> PromptClassifier:
        """Rebuild a classifier saved by :meth:`save`; ``overrides`` replace saved parameters (e.g. ``device``;
        ``model=`` and ``tokenizer=`` give a continuous prompt a base model object to attach to).

        Loading runs no code from the folder and reads nothing outside it (:mod:`promptlearn.estimators.saved_folders`):
        ``trust_remote_code`` is only what is passed here; a base model recorded as a local path outside the
        folder is used only when ``model=`` is passed."""
        from .saved_folders import open_saved

        folder = open_saved(directory, fmt=FORMAT, version=FORMAT_VERSION, what="PromptClassifier",
                            schema=_SAVED_SCHEMA, required=("model", "template", "verbalizer", "params"))
        config = folder.config
        if "source" not in config["template"]:
            raise folder.fail("'template'", "lacks its 'source'")
        source = folder.require(config["template"]["source"], "template.source", (str,))
        name = folder.require(config["template"].get("name"), "template.name", (str, type(None)))
        params = folder.params(cls, exclude=("model", "template", "verbalizer", "tokenizer"))
        for key, types in (("demo_pool", (dict, type(None))), ("source_options", (dict, type(None))),
                           ("demo_encoder", (str, type(None)))):
            folder.require(params.get(key), f"params.{key}", types)
        for key in ("content_free", "shortenable"):
            if params.get(key) is not None:
                folder.string_list(params[key], f"params.{key}")
        if "gguf_file" not in overrides:
            params["gguf_file"] = folder.file_name(params.get("gguf_file"), "params.gguf_file")
        model = overrides.pop("model", None)
        trust = overrides.get("trust_remote_code", False) is True
        if model is None:
            if config["model"] is None:  # the trained weights are in the folder (safetensors; no GGUF file)
                model = folder.model_dir("model", "the model folder", trust_remote_code=trust)
                params["gguf_file"] = None
            else:
                model = folder.model_name(config["model"], "'model'")
        if isinstance(params.get("demo_encoder"), str) and "demo_encoder" not in overrides:
            params["demo_encoder"] = folder.model_name(params["demo_encoder"], "params.demo_encoder",
                                                       parameter="demo_encoder")
        params.update(overrides)
        with folder.building():
            Verbalizer.load(config["verbalizer"], aggregation=params.get("aggregation"))  # checked now, not later
            template = Template(source, name=name, shortenable=params.get("shortenable"))
            classifier = cls(model=model, template=template, verbalizer=config["verbalizer"], **params)
        if params.get("source", "manual") != "manual":
            from safetensors.torch import load_file

            if not (folder.directory / PROMPT_FILE).is_file():
                raise PromptlearnError(f"{folder.directory} holds a {params['source']!r} prompt but not its "
                                       f"parameters ({PROMPT_FILE}); save it again")
            path = folder.inside(PROMPT_FILE, f"the prompt's parameters ({PROMPT_FILE})")
            try:
                classifier._pending_prompt_state = load_file(str(path))
            except Exception as exc:  # safetensors raises its own error types for a damaged file
                raise folder.fail(f"the prompt's parameters ({PROMPT_FILE})",
                                  f"cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                                  ) from None
        return classifier
