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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..core.calibration import CONTENT_FREE, content_free_inputs
from ..core.checks import check_param_types
from ..core.inputs import as_examples, soft_targets
from ..core.errors import ChatTemplateError, ConfigError, DataError, DemonstrationError, PromptlearnError
from .saved_classifier import load_classifier, save_classifier
from ..models.loader import LoadedModel, loaded_model
from ..models.precision import MixedPrecision
from ..pipeline.pipeline import PromptPipeline
from ..scorer import Scorer, make_scorer
from ..core.template import Prompt, Template
from ..core.verbalizer import Verbalizer

logger = logging.getLogger(__name__)

_SOFT_SLOT = re.compile(r"\[SOFT(?::(\d+))?\]")


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
        return self._loaded

    def _load_model(self) -> LoadedModel:
        return loaded_model(self.model, tokenizer=self.tokenizer, gguf_file=self.gguf_file, device=self.device,
                            dtype=self.dtype, trust_remote_code=self.trust_remote_code)

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
        return self._selector_cache

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

    @property
    def pipeline_(self) -> PromptPipeline:
        """The :class:`~promptlearn.pipeline.pipeline.PromptPipeline` of this configuration: render ->
        demonstrations -> score -> calibrate (built on first use; rebuilt when a part changes or after fit)."""
        scorer = self.scorer_
        contextual = self._uses_context()
        selector = self.demo_selector_ if contextual else None
        separator, chat = self._context_parts() if contextual else (" ", None)
        key = (self.template_, self.verbalizer_, _Same(scorer), _Same(self.prompt_), _Same(selector),
               content_free_inputs(self.content_free), self.demo_sets, contextual, separator, chat)
        if getattr(self, "_pipeline", None) is None or self._pipeline_key != key:
            self._pipeline = PromptPipeline(self.model_, self.template_, self.verbalizer_, scorer,
                                            content_free=self.content_free, selector=selector, n_sets=self.demo_sets,
                                            context=contextual, separator=separator, chat=chat)
            self._pipeline_key = key
        return self._pipeline

    def render_prompts(self, X: Any) -> list[list[Prompt]]:
        """The prompts scored for ``X``: ``[demo set][example]`` (one set without demonstrations), each a
        :class:`~promptlearn.core.template.Prompt` whose ``text`` shows the demonstrations and ``demonstrations``
        their pool indices."""
        return self.pipeline_.render(as_examples(X, self.template_.fields))

    # -- inference -------------------------------------------------------------------------------
    def _log_probs(self, X: Any, calibrate: bool) -> np.ndarray:
        return self._log_probs_variants(X, (calibrate,))[0]

    def _log_probs_variants(self, X: Any, calibrations: Sequence[bool]) -> list[np.ndarray]:
        """Class log-probabilities of ``X``, raw or calibrated per entry of ``calibrations``; one scoring pass."""
        return self.pipeline_.log_probs(as_examples(X, self.template_.fields), calibrations)

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
        return self.pipeline_.content_free_prior()

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

        from ..pipeline.objective import dev_accuracy, objective, token_budget_split
        from ..pipeline.training import Trainer, TrainingConfig, freeze

        template, verbalizer = self.template_, self.verbalizer_
        examples = as_examples(X, template.fields)
        soft = soft_targets(y, len(verbalizer))  # None: hard labels (the unchanged path)
        labels = verbalizer.label_indices(y) if soft is None else list(soft.argmax(axis=1))
        if len(labels) != len(examples):
            raise DataError(f"{len(examples)} examples but {len(labels)} labels")
        missing = [c for i, c in enumerate(verbalizer.classes) if i not in set(labels)]
        if missing and soft is None:  # soft targets give every class some probability mass
            raise DataError(f"no training example for class(es) {missing}; every class needs at least one")
        dev_examples, dev_labels = None, None
        if dev is not None:
            dev_examples = as_examples(dev[0], template.fields)
            dev_labels = np.asarray(verbalizer.label_indices(dev[1]))
        contextual = self._uses_context()
        if contextual and self.demos and self.demo_pool is None:  # LM-BFF: demonstrations from the training data
            from ..pipeline.demonstrations import pool_to_json, read_pool

            names = [verbalizer.classes[label] for label in labels]
            self.demo_pool_ = pool_to_json(*read_pool((examples, names), template, verbalizer), verbalizer)
        if contextual:
            self.pipeline_  # checks the pool and the chat template before training
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
        pipeline = self.pipeline_
        precision = MixedPrecision(loaded.model if module is None else module)
        # Fixed prompts are tokenized once, not at every step (demonstrations change every step).
        encoded = None if contextual else scorer.encode_rows([template.render(e) for e in examples], verbalizer)
        target = torch.as_tensor(labels, device=scorer.device)
        if soft is not None:  # cross_entropy takes class probabilities as targets too (float, [n, C])
            target = torch.as_tensor(soft, dtype=torch.float32, device=scorer.device)
        loss_fn = objective(pipeline, examples, target, precision=precision, demonstrations=bool(self.demos),
                            encoded=encoded, auxiliary=auxiliary, mlm_weight=float(self.mlm_weight))
        split = token_budget_split(encoded, self.train_tokens_per_pass, scorer.device.type) if auxiliary is None else None
        evaluate = dev_accuracy(pipeline, dev_examples, dev_labels, precision) if dev is not None else None
        config = TrainingConfig(
            learning_rate=self.learning_rate, epochs=self.epochs, max_steps=self.max_steps,
            batch_size=self.train_batch_size, gradient_accumulation_steps=self.gradient_accumulation_steps,
            warmup_ratio=self.warmup_ratio, weight_decay=self.weight_decay, eval_every=self.eval_every,
            patience=self.patience, checkpoint_every=self.checkpoint_every or self.eval_every, seed=self.seed,
            checkpoint_seconds=60.0 * self.checkpoint_minutes if self.checkpoint_minutes is not None else None)
        trainer = Trainer(loaded.model if module is None else module, loss_fn, len(examples), config,
                          evaluate=evaluate, checkpoint_dir=self.checkpoint_dir,
                          show_progress=self.show_progress, log_every=self.log_every, split=split,
                          description="prompt-based fine-tuning" if module is None else f"{self.source} prompt")
        with precision:
            self.training_result_ = trainer.train(resume=resume)
        loaded.model.eval()
        if module is not None:
            module.eval()
        self._fitted = True
        self._pipeline = None  # the weights changed: the calibration priors with them
        return self

    # -- persistence -------------------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return bool(getattr(self, "_fitted", False)) and getattr(self, "_loaded", None) is not None

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a folder with ``config.json`` (and the model's safetensors weights when they were trained or
        the model was given as an object), atomically; :meth:`load` gives identical predictions."""
        return save_classifier(self, directory, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike, **overrides: Any) -> PromptClassifier:
        """Rebuild a classifier saved by :meth:`save`; ``overrides`` replace saved parameters (e.g. ``device``;
        ``model=`` and ``tokenizer=`` give a continuous prompt a base model object to attach to).

        Loading runs no code from the folder and reads nothing outside it
        (:mod:`promptlearn.estimators.saved_folders`): ``trust_remote_code`` is only what is passed here; a base
        model recorded as a local path outside the folder is used only when ``model=`` is passed."""
        return load_classifier(cls, directory, **overrides)
