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

from ..core.calibration import content_free_inputs
from ..core.checks import check_types
from ..core.estimator import ClassifierProtocol
from ..core.inputs import as_examples, soft_targets
from ..core.errors import ChatTemplateError, ConfigError, DataError, DemonstrationError, PromptlearnError
from .options import (GROUPS, DemonstrationOptions, ScoringOptions, TrainingOptions, is_flat, is_option, warn_flat,
                      with_options)
from .saved_classifier import load_classifier, save_classifier
from ..models.loader import LoadedModel, loaded_model
from ..models.precision import MixedPrecision
from ..pipeline.pipeline import PromptPipeline
from ..scorer import Scorer, make_scorer
from ..core.template import Prompt, Template
from ..core.verbalizer import Verbalizer
from ..tuning.config import TuningConfig

logger = logging.getLogger(__name__)

_SOFT_SLOT = re.compile(r"\[SOFT(?::(\d+))?\]")


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
#: The top-level parameters' types: name -> (kind, None allowed, needed only by fit); the groups check their own.
_PARAMETER_TYPES = {"calibrate": ("bool", False, False), "device": ("device", True, False),
                    "gguf_file": ("path", True, False), "trust_remote_code": ("bool", False, False),
                    "show_progress": ("bool", True, False), "seed": ("int", False, False)}


class PromptClassifier(ClassifierProtocol):
    """Classify text by asking a language model to fill a template's ``[MASK]`` with label words.

    Parameters
    ----------
    model: a hub id, local folder, ``.gguf`` path, short name (``smollm2``), or a loaded
        ``transformers`` model (then pass ``tokenizer`` too).
    template: a :class:`Template`, a file, a shipped name (``sst2/it_was``) or Jinja text with ``[MASK]``.
    verbalizer: a :class:`Verbalizer`, a dict, a file or a shipped name (``sst2``).
    tuning: how the prompt is parameterised and what :meth:`fit` trains: a method's name or its config
        (:mod:`promptlearn.tuning`) — ``manual`` / :class:`~promptlearn.tuning.ManualConfig` (the template as
        written; fit trains the model's weights, ``trainable`` of them, with PET's optional ``mlm_weight``),
        ``soft`` (prompt tuning: the template's ``[SOFT]`` / ``[SOFT:n]`` slots are trainable embeddings; a
        template without slots gets ``[SOFT:n_tokens]`` in front), ``ptuning`` (those embeddings from an LSTM/MLP
        prompt encoder), ``deep`` (P-tuning v2: key/value prefixes at every layer), ``lora`` / ``adapter``
        (PEFT), ``bitfit`` (biases). Each config carries its options and its ``learning_rate``. With any method
        but ``manual`` the base model stays frozen and untouched, fit trains only the prompt's parameters, and
        :meth:`save` writes only those (plus the base model's name).
    calibrate: apply contextual calibration (the content-free inputs are ``scoring.content_free``).
    scoring: :class:`~promptlearn.estimators.options.ScoringOptions` — label-word decoding and aggregation,
        truncation, batch size, window, content-free inputs, chat template.
    training: :class:`~promptlearn.estimators.options.TrainingOptions` — epochs or steps, batch size, warmup,
        weight decay, dev evaluation and early stopping, checkpoints (Ctrl-C / SIGTERM write one and raise
        :class:`~promptlearn.pipeline.training.TrainingInterrupted`; ``fit(..., resume=True)`` continues),
        progress lines, the token budget of one pass.
    demonstrations: :class:`~promptlearn.estimators.options.DemonstrationOptions` — in-context examples per
        class, their pool, selection and sets. :meth:`fit` trains with demonstrations drawn from the pool at
        every step (never the example itself); with ``max_steps=0`` it trains nothing and only makes its
        ``(X, y)`` the pool (in-context learning, the weights untouched).
    device: ``cpu``, ``cuda``, ``cuda:1``, ``mps`` ... (default: ``$PROMPTLEARN_DEVICE``, else cuda when present).
    dtype: the model's weights: ``float32``, ``bfloat16``, ``float16`` or ``auto`` (the checkpoint's own);
        default: as loaded (float32 for a name, untouched for a model object). Scores are float32 whatever
        the dtype; :meth:`fit` trains a bfloat16 model with float32 master weights under autocast and refuses
        float16 (see :mod:`promptlearn.models.precision`).
    gguf_file, trust_remote_code: how ``model`` is loaded (a GGUF file in a repository or folder; custom model
        code only when passed here). show_progress: progress bars (default: when stderr is a terminal).
    seed: every random choice (prompt initialisation, demonstrations, training order and dropout).

    Nested options are scikit-learn parameters: ``set_params(training__epochs=3)``, ``GridSearchCV`` over
    ``{"tuning__learning_rate": [...]}`` and ``clone`` work. The flat keywords of earlier releases
    (``epochs=3``, ``demos=2``, ``source="soft"``) still work for one release, with a DeprecationWarning.
    """

    def __init__(self, model: Any = "smollm2", template: Any = None, verbalizer: Any = None, *,
                 tokenizer: Any = None, tuning: str | TuningConfig = "manual", calibrate: bool = False,
                 scoring: ScoringOptions = ScoringOptions(), training: TrainingOptions = TrainingOptions(),
                 demonstrations: DemonstrationOptions = DemonstrationOptions(), device: str | None = None,
                 dtype: str | None = None, gguf_file: str | None = None, trust_remote_code: bool = False,
                 show_progress: bool | None = None, seed: int = 0, **legacy: Any) -> None:
        if legacy:  # the flat keywords of earlier releases, folded into the groups (DeprecationWarning)
            unknown = sorted(name for name in legacy if not is_flat(name))
            if unknown:
                raise ConfigError(f"PromptClassifier got unexpected keyword(s) {unknown}")
            warn_flat("PromptClassifier", legacy)
            changed = with_options({"scoring": scoring, "training": training, "demonstrations": demonstrations,
                                    "tuning": tuning}, legacy)
            scoring, training, demonstrations, tuning = (changed[name] for name in (*GROUPS, "tuning"))
        self.model = model
        self.template = template
        self.verbalizer = verbalizer
        self.tokenizer = tokenizer
        self.tuning = tuning
        self.calibrate = calibrate
        self.scoring = scoring
        self.training = training
        self.demonstrations = demonstrations
        self.device = device
        self.dtype = dtype
        self.gguf_file = gguf_file
        self.trust_remote_code = trust_remote_code
        self.show_progress = show_progress
        self.seed = seed

    def set_params(self, **params: Any) -> PromptClassifier:
        """scikit-learn's ``set_params``; nested options (``training__epochs=3``, ``tuning__learning_rate=...``)
        replace the group with a changed copy, so a group shared with another classifier is never changed."""
        options = {key: value for key, value in params.items() if "__" in key or is_flat(key)}
        super().set_params(**{key: value for key, value in params.items() if key not in options})
        if any(is_flat(key) for key in options):
            warn_flat("PromptClassifier.set_params", [key for key in options if is_flat(key)])
        if options:
            current = {name: getattr(self, name) for name in (*GROUPS, "tuning")}
            for name, value in with_options(current, options).items():
                setattr(self, name, value)
        return self

    def _check_params(self, fitting: bool = False) -> None:
        """A wrong type is one ConfigError naming the parameter, before the model is loaded."""
        check_types(self, _PARAMETER_TYPES)
        for name, group in GROUPS.items():
            value = getattr(self, name)
            if not isinstance(value, group):
                raise ConfigError(f"PromptClassifier({name}=...) must be a {group.__name__}, got "
                                  f"{type(value).__name__}")
            value.check(fitting=fitting)

    @property
    def tuning_config_(self) -> TuningConfig:
        """The tuning method's config (``tuning`` as given, or the named method's defaults), checked."""
        from ..tuning import as_tuning_config

        return as_tuning_config(self.tuning, owner="PromptClassifier")

    # -- resolved configuration ----------------------------------------------------------------
    @property
    def template_(self) -> Template:
        if self.template is None:
            raise PromptlearnError("no template given; pass template= (a file, 'task/name' or Jinja text with [MASK])")
        shortenable = self.scoring.shortenable
        tuning = self.tuning_config_
        key = (_spec_key(self.template), tuple(shortenable) if shortenable is not None else None, repr(tuning))
        if getattr(self, "_template_key", None) != key:
            template = Template.load(self.template, shortenable=shortenable)
            from ..tuning import DEFAULT_SOFT_TOKENS

            if tuning.fills_soft_slots and not _SOFT_SLOT.search(template.source):
                # Prompt tuning on a template without soft slots: the soft prompt goes in front (Lester et al.).
                n = tuning.n_tokens or DEFAULT_SOFT_TOKENS
                template = Template(f"[SOFT:{n}] " + template.source, name=template.name, shortenable=shortenable)
            self._template_cache = template
            self._template_key = key
        return self._template_cache

    @property
    def verbalizer_(self) -> Verbalizer:
        if self.verbalizer is None:
            raise PromptlearnError("no verbalizer given; pass verbalizer= (a file, a shipped name or a dict)")
        key = (_spec_key(self.verbalizer), self.scoring.aggregation)
        if getattr(self, "_verbalizer_key", None) != key:
            self._verbalizer_cache = Verbalizer.load(self.verbalizer, aggregation=self.scoring.aggregation)
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
        self._check_params()  # a wrong type is one ConfigError, before the model is loaded
        loaded = self.model_
        scoring = self.scoring
        options = (scoring.multi_token, scoring.after_mask, scoring.batch_size, scoring.max_length, self.show_progress)
        with _LAZY_STATE:
            if getattr(self, "_scorer_cache", None) is None or self._scorer_options != options:
                self._scorer_cache = make_scorer(loaded.kind, loaded.model, loaded.tokenizer,
                                                 multi_token=scoring.multi_token, after_mask=scoring.after_mask,
                                                 batch_size=scoring.batch_size, max_length=scoring.max_length,
                                                 show_progress=self.show_progress)
                self._scorer_options = options
            self._scorer_cache.prompt_source = self._prompt_set()
            return self._scorer_cache

    # -- continuous prompts ------------------------------------------------------------------------
    @property
    def prompt_(self) -> Any:
        """The prompt's trainable module (a :class:`~promptlearn.tuning.PromptModule`; None for ``manual``),
        made for the loaded model on first use (initialised from ``seed``, or the saved parameters)."""
        config = self.tuning_config_
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
        if n_soft and not config.fills_soft_slots:
            raise ConfigError(f"{template.where} has [SOFT] slots, which only the {' and '.join(SOFT_SOURCES)} tuning "
                              f"methods fill (tuning={config.source!r})")
        if config.fills_soft_slots and config.n_tokens is not None and config.n_tokens != n_soft:
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
        demos = self.demonstrations
        if isinstance(demos.k, bool) or not isinstance(demos.k, (int, np.integer)) or demos.k < 0:
            raise ConfigError(f"DemonstrationOptions(k=...) must be a number of demonstrations per class >= 0, got "
                              f"{demos.k!r}")
        if isinstance(demos.sets, bool) or not isinstance(demos.sets, (int, np.integer)) or demos.sets < 1:
            raise ConfigError(f"DemonstrationOptions(sets=...) must be >= 1, got {demos.sets!r}")
        return demos.k > 0 or bool(self.scoring.chat_template)

    def _pool(self) -> Any:
        """The demonstration pool in use: ``demonstrations.pool``, else the training data of :meth:`fit`."""
        pool = self.demonstrations.pool
        return pool if pool is not None else getattr(self, "demo_pool_", None)

    @property
    def demo_selector_(self) -> Any:
        """The :class:`~promptlearn.pipeline.demonstrations.DemonstrationSelector` of this configuration (None: no demos)."""
        from ..pipeline.demonstrations import DemonstrationSelector, make_encoder, read_pool

        demos = self.demonstrations
        if not self._uses_context() or not demos.k:
            return None
        pool = self._pool()
        if pool is None:
            raise DemonstrationError(f"{demos.k} demonstration(s) per class need labelled examples to draw them from: "
                                     "pass a pool (DemonstrationOptions(pool=(X, y)); CLI: --demo-pool FILE), or "
                                     "call fit(X, y) (its training data become the pool)")
        template, verbalizer, kind = self.template_, self.verbalizer_, self.model_.kind
        encoder_key = _spec_key(demos.encoder) if demos.selection == "similar" else None
        key = (_Same(pool), template, _spec_key(self.verbalizer), demos.k, demos.selection, self.seed, kind,
               encoder_key)
        if getattr(self, "_selector_key", None) != key:
            examples, labels = read_pool(pool, template, verbalizer)
            encoder = None
            if demos.selection == "similar":
                if demos.encoder is None:
                    raise DemonstrationError("selection='similar' needs DemonstrationOptions(encoder=...): a model "
                                             "name such as 'minilm', or a callable texts -> vectors")
                previous = getattr(self, "_encoder_cache", None)
                encoder = previous[1] if previous and previous[0] == encoder_key else make_encoder(
                    demos.encoder, self.device)
                self._encoder_cache = (encoder_key, encoder)
            self._selector_cache = DemonstrationSelector(
                examples, labels, len(verbalizer), template.fields, k=demos.k, selection=demos.selection,
                causal=kind == "causal", seed=self.seed, encoder=encoder, classes=verbalizer.classes)
            self._selector_key = key
        return self._selector_cache

    def _context_parts(self) -> tuple[str, tuple[str, str] | None]:
        """(separator, chat wrapper or None) for the loaded model."""
        from ..pipeline.demonstrations import CAUSAL_SEPARATOR, chat_wrapper

        loaded = self.model_
        causal = loaded.kind == "causal"
        if self.scoring.chat_template and not causal:
            raise ChatTemplateError(f"chat_template=True needs a causal (instruct) LM; {loaded.name} is a "
                                    f"{loaded.kind} LM")
        chat = chat_wrapper(loaded.tokenizer, loaded.name) if self.scoring.chat_template else None
        separator = self.demonstrations.separator
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
               content_free_inputs(self.scoring.content_free), self.demonstrations.sets, contextual, separator, chat)
        if getattr(self, "_pipeline", None) is None or self._pipeline_key != key:
            self._pipeline = PromptPipeline(self.model_, self.template_, self.verbalizer_, scorer,
                                            content_free=self.scoring.content_free, selector=selector,
                                            n_sets=self.demonstrations.sets, context=contextual, separator=separator,
                                            chat=chat)
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
        ``unlabeled``: examples for the auxiliary language-model loss (``ManualConfig(mlm_weight > 0)``).
        ``dev``: ``(X_dev, y_dev)`` for evaluation every ``training.eval_every`` steps, early stopping and keeping
        the best weights. ``resume``: continue from the checkpoint in ``training.checkpoint_dir``.
        """
        self._check_params(fitting=True)
        tuning, options, demos = self.tuning_config_, self.training, self.demonstrations
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
        self.training_data_ = {"examples": len(labels), "per_class": {c: sum(1 for label in labels if label == i)
                                                                     for i, c in enumerate(verbalizer.classes)}}
        dev_examples, dev_labels = None, None
        if dev is not None:
            dev_examples = as_examples(dev[0], template.fields)
            dev_labels = np.asarray(verbalizer.label_indices(dev[1]))
        contextual = self._uses_context()
        if contextual and demos.k and demos.pool is None:  # LM-BFF: demonstrations from the training data
            from ..pipeline.demonstrations import pool_to_json, read_pool

            names = [verbalizer.classes[label] for label in labels]
            self.demo_pool_ = pool_to_json(*read_pool((examples, names), template, verbalizer), verbalizer)
        if contextual:
            self.pipeline_  # checks the pool and the chat template before training
        if options.max_steps == 0:  # in-context learning only: the labelled data become the pool, no weight changes
            if not (contextual and demos.k):
                raise ConfigError("max_steps=0 trains nothing; it is for in-context learning (DemonstrationOptions(k > 0)), where "
                                  "fit(X, y) only makes X, y the demonstration pool. Set max_steps >= 1 to train.")
            self.training_result_ = None  # the calibration priors are keyed by the pool: no cache to drop
            return self
        auxiliary = None
        mlm_weight = float(getattr(tuning, "mlm_weight", 0.0))  # PET's auxiliary LM loss: the manual method's
        if mlm_weight > 0:
            if unlabeled is None:
                raise DataError("mlm_weight > 0 needs unlabelled examples: fit(..., unlabeled=...)")
            auxiliary = [template.render(example) for example in as_examples(unlabeled, template.fields)]
        loaded, scorer = self.model_, self.scorer_
        module = self.prompt_
        if module is None:
            freeze(loaded.model, tuning.trainable)
        else:  # continuous prompt / PEFT / BitFit: the base model stays frozen, only the prompt trains
            module.freeze_base()
        pipeline = self.pipeline_
        precision = MixedPrecision(loaded.model if module is None else module)
        # Fixed prompts are tokenized once, not at every step (demonstrations change every step).
        prompts = None if contextual else [template.render(example) for example in examples]
        encoded = None if prompts is None else scorer.encode_rows(prompts, verbalizer)
        target = torch.as_tensor(labels, device=scorer.device)
        if soft is not None:  # cross_entropy takes class probabilities as targets too (float, [n, C])
            target = torch.as_tensor(soft, dtype=torch.float32, device=scorer.device)
        loss_fn = objective(pipeline, examples, target, precision=precision, demonstrations=bool(demos.k),
                            prompts=prompts, encoded=encoded, auxiliary=auxiliary, mlm_weight=mlm_weight)
        split = token_budget_split(encoded, options.tokens_per_pass, scorer.device.type) if auxiliary is None else None
        evaluate = dev_accuracy(pipeline, dev_examples, dev_labels, precision) if dev is not None else None
        config = TrainingConfig(
            learning_rate=tuning.learning_rate, epochs=options.epochs, max_steps=options.max_steps,
            batch_size=options.batch_size, gradient_accumulation_steps=options.gradient_accumulation_steps,
            warmup_ratio=options.warmup_ratio, weight_decay=options.weight_decay, eval_every=options.eval_every,
            patience=options.patience, checkpoint_every=options.checkpoint_every or options.eval_every,
            seed=self.seed, checkpoint_seconds=(60.0 * options.checkpoint_minutes
                                                if options.checkpoint_minutes is not None else None))
        trainer = Trainer(loaded.model if module is None else module, loss_fn, len(examples), config,
                          evaluate=evaluate, checkpoint_dir=options.checkpoint_dir,
                          show_progress=self.show_progress, log_every=options.log_every, split=split,
                          description="prompt-based fine-tuning" if module is None else f"{tuning.source} prompt")
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

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False,
             card: Mapping[str, Any] | None = None) -> Path:
        """Write a folder with ``config.json`` (and the model's safetensors weights when they were trained or
        the model was given as an object) and its model card ``README.md``, atomically; :meth:`load` gives
        identical predictions. ``card``: the card's fields (``language``, ``license``, ``tags``, ``datasets``,
        ``model_name``, ``description``, ...; :mod:`~promptlearn.estimators.model_card`), kept for later saves
        and pushes (and by :meth:`load`), a field given again replacing the kept one."""
        return save_classifier(self, directory, overwrite=overwrite, card=card)

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str | None = None, revision: str | None = None,
                    card: Mapping[str, Any] | None = None) -> Any:
        """Save to a Hugging Face hub repository (created if needed): :func:`promptlearn.estimators.hub.push_to_hub`."""
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, private=private, token=token, commit_message=commit_message,
                           revision=revision, card=card)

    @classmethod
    def from_pretrained(cls, repo_id_or_folder: str | os.PathLike, *, revision: str | None = None,
                        token: str | None = None, **overrides: Any) -> PromptClassifier:
        """:meth:`load` from a saved folder or a hub repository (downloaded, then loaded by the same safe loader):
        :func:`promptlearn.estimators.hub.from_pretrained`."""
        from .hub import from_pretrained

        return from_pretrained(cls, repo_id_or_folder, revision=revision, token=token, **overrides)

    @classmethod
    def load(cls, directory: str | os.PathLike, **overrides: Any) -> PromptClassifier:
        """Rebuild a classifier saved by :meth:`save`; ``overrides`` replace saved parameters (e.g. ``device``;
        ``model=`` and ``tokenizer=`` give a continuous prompt a base model object to attach to).

        ``overrides`` may also set one option of a group (``scoring__batch_size=1``) or use the flat option names
        (``batch_size=1``), on top of the saved group.

        Loading runs no code from the folder and reads nothing outside it
        (:mod:`promptlearn.estimators.saved_folders`): ``trust_remote_code`` is only what is passed here; a base
        model recorded as a local path outside the folder is used only when ``model=`` is passed."""
        return load_classifier(cls, directory, **overrides)

    @classmethod
    def accepts_override(cls, name: str) -> bool:
        """Whether :meth:`load` takes ``name`` as an override: a parameter, a group's option (``scoring__batch_size``)
        or a flat option name (``batch_size``: a PromptEnsemble passes its overrides to every member in the
        member's own spelling)."""
        return name in cls._get_param_names() or is_option(name)
