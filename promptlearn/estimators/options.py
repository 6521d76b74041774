"""PromptClassifier's grouped configuration: how it scores, trains and draws demonstrations.

Each group is a frozen dataclass with scikit-learn's ``get_params``, so a classifier's nested parameters show in
``get_params(deep=True)`` and can be set with ``set_params(training__epochs=3)``, searched by ``GridSearchCV``
and copied by ``clone``. How a prompt is parameterised (and its learning rate) is the ``tuning`` config's
(:mod:`promptlearn.tuning`).

The flat option names (``epochs``, ``demos``, ``source``, ...) are how the CLI and configuration files spell the
options: :func:`from_flat` maps them into the groups. As keywords of the Python API (earlier releases' spelling:
``PromptClassifier(epochs=3, demos=2, source="soft")``) they still work for one release, with a
:class:`DeprecationWarning` naming the new spelling (:func:`warn_flat`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.calibration import CONTENT_FREE
from ..core.checks import check_types
from ..core.config import ConfigGroup


class _Options(ConfigGroup):
    """A frozen options group, type-checked when used."""

    TYPES: dict[str, tuple[str, bool, bool]] = {}

    def check(self, fitting: bool = False) -> None:
        """A wrong type is one :class:`ConfigError` naming the option (checked when used, as in scikit-learn)."""
        check_types(self, self.TYPES, fitting=fitting)


@dataclass(frozen=True)
class ScoringOptions(_Options):
    """How prompts become class scores.

    ``multi_token``: ``parallel`` or ``left_to_right`` decoding of multi-token label words (masked LMs).
    ``after_mask``: causal LMs: ``drop`` the text after ``[MASK]`` or ``score`` it with each word.
    ``aggregation``: how several words of one class combine: ``mean`` (of probabilities), ``max``, ``sum``.
    ``shortenable``: the fields truncation may shorten (default: all the template's fields).
    ``batch_size``: prompts per forward pass. ``max_length``: the token budget of one prompt (default: the
    model's window). ``content_free``: the inputs whose class prior contextual calibration divides out.
    ``chat_template``: wrap each prompt in the tokenizer's chat template as a user message (causal instruct
    models); the label word starts the assistant's reply.
    """

    multi_token: str = "parallel"
    after_mask: str = "drop"
    aggregation: str = "mean"
    shortenable: Sequence[str] | None = None
    batch_size: int = 16
    max_length: int | None = None
    content_free: str | Sequence[str] = CONTENT_FREE
    chat_template: bool = False

    TYPES = {"multi_token": ("str", False, False), "after_mask": ("str", False, False),
             "aggregation": ("str", True, False), "shortenable": ("names", True, False),
             "batch_size": ("int", False, False), "max_length": ("int", True, False),
             "content_free": ("strings", False, False), "chat_template": ("bool", False, False)}


@dataclass(frozen=True)
class TrainingOptions(_Options):
    """How :meth:`~promptlearn.PromptClassifier.fit` trains (the learning rate is the tuning config's).

    ``epochs`` or ``max_steps`` (optimizer steps; overrides epochs), ``batch_size``,
    ``gradient_accumulation_steps``, ``warmup_ratio``, ``weight_decay``; ``eval_every`` / ``patience`` (steps
    between dev evaluations, and how many without gain stop training; the best dev accuracy's weights are kept);
    ``checkpoint_dir``, ``checkpoint_every`` and ``checkpoint_minutes`` (atomic checkpoints for
    ``fit(..., resume=True)``: every ``checkpoint_every`` steps (default: every evaluation), every
    ``checkpoint_minutes`` of wall-clock time (default 10; None: off), at the end, and when Ctrl-C or SIGTERM
    stops training); ``log_every`` (a progress line to the ``promptlearn.pipeline.training`` logger every N
    steps or 30 s, whichever first; None: every 30 s only); ``tokens_per_pass`` (a batch holding more padded
    tokens than this is computed in several forward/backward passes whose gradients add up to the batch's;
    None: 512 on a CPU, no limit on a GPU; 0: no limit).
    """

    epochs: float = 10.0
    max_steps: int | None = None
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.01
    eval_every: int | None = None
    patience: int | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = 10.0
    log_every: int | None = 10
    tokens_per_pass: int | None = None

    TYPES = {"epochs": ("real", False, True), "max_steps": ("int", True, True), "batch_size": ("int", False, True),
             "gradient_accumulation_steps": ("int", False, True), "warmup_ratio": ("real", False, True),
             "weight_decay": ("real", False, True), "eval_every": ("int", True, True),
             "patience": ("int", True, True), "checkpoint_dir": ("path", True, True),
             "checkpoint_every": ("int", True, True), "checkpoint_minutes": ("real", True, True),
             "log_every": ("int", True, True), "tokens_per_pass": ("int", True, True)}


@dataclass(frozen=True)
class DemonstrationOptions(_Options):
    """In-context demonstrations (:mod:`promptlearn.pipeline.demonstrations`).

    ``k`` labelled examples per class (0: none) from ``pool`` (``(X, y)``; by default :meth:`fit`'s training
    data), rendered with the same template and their class's first label word: after the example for a masked
    LM (LM-BFF), before it for a causal LM (joined by ``separator``). ``selection``: ``random``, ``balanced`` or
    ``similar`` (by cosine similarity of ``encoder``'s sentence embeddings: ``minilm`` or a callable
    ``texts -> vectors``); ``sets`` sets drawn with different seeds are ensembled.
    """

    k: int = 0
    pool: Any = dataclasses.field(default=None, repr=False, compare=False)
    selection: str = "random"
    sets: int = 1
    separator: str | None = None
    encoder: Any = "minilm"

    TYPES = {"k": ("int", False, False), "selection": ("str", False, False), "sets": ("int", False, False),
             "separator": ("str", True, False)}


GROUPS = {"scoring": ScoringOptions, "training": TrainingOptions, "demonstrations": DemonstrationOptions}

#: Flat option names -- the CLI's and configuration files' spelling, and the keywords of earlier releases -- and
#: where each lives: name -> (group, option). ``source`` / ``source_options`` name the tuning method and its options.
FLAT = {
    **{name: ("scoring", name) for name in ("multi_token", "after_mask", "aggregation", "shortenable", "batch_size",
                                            "max_length", "content_free", "chat_template")},
    **{name: ("training", name) for name in ("epochs", "max_steps", "gradient_accumulation_steps", "warmup_ratio",
                                             "weight_decay", "eval_every", "patience", "checkpoint_dir",
                                             "checkpoint_every", "checkpoint_minutes", "log_every")},
    "train_batch_size": ("training", "batch_size"), "train_tokens_per_pass": ("training", "tokens_per_pass"),
    "demos": ("demonstrations", "k"), "demo_pool": ("demonstrations", "pool"),
    "demo_selection": ("demonstrations", "selection"), "demo_sets": ("demonstrations", "sets"),
    "demo_separator": ("demonstrations", "separator"), "demo_encoder": ("demonstrations", "encoder"),
    # the manual tuning method's options, and every method's learning rate
    "learning_rate": ("tuning", "learning_rate"), "trainable": ("tuning", "trainable"),
    "mlm_weight": ("tuning", "mlm_weight"),
}
FLAT_TUNING = ("source", "source_options")
_CLASS_NAMES = {"scoring": "ScoringOptions", "training": "TrainingOptions", "demonstrations": "DemonstrationOptions"}


def is_flat(name: str) -> bool:
    """Whether ``name`` is a flat option name (:data:`FLAT`, ``source``, ``source_options``)."""
    return name in FLAT or name in FLAT_TUNING


def is_option(name: str) -> bool:
    """Whether ``name`` sets one option of a group: nested (``training__epochs``, ``tuning__learning_rate``) or
    flat (``epochs``)."""
    group, nested, _ = name.partition("__")
    return is_flat(name) or bool(nested) and group in (*GROUPS, "tuning")


def with_options(groups: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``groups`` (the option groups and the tuning -- a config or a method's name -- by name) with single options
    set: flat names (``epochs``, :func:`from_flat`), then nested ones (``training__epochs``). A group is replaced
    by a changed copy, never changed; a nested name of no group is a ConfigError."""
    from ..core.errors import ConfigError
    from ..tuning import as_tuning_config

    changed = dict(groups)
    flat = {name: value for name, value in options.items() if is_flat(name)}
    if flat:
        changed.update(from_flat(flat, changed))
    for name, value in options.items():
        group, nested, option = name.partition("__")
        if not nested:
            continue
        if group not in changed:
            raise ConfigError(f"PromptClassifier has no parameter group {group!r}; groups: tuning, "
                              f"{', '.join(GROUPS)}")
        current = as_tuning_config(changed[group]) if group == "tuning" else changed[group]  # also given by name
        changed[group] = current.replace(**{option: value})
    return changed


def from_flat(params: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """PromptClassifier keyword arguments from flat option names (``epochs=3, demos=2, source="soft"``: the CLI's
    and configuration files' spelling): the flat ones folded into their groups, on top of ``base``'s
    (``scoring``, ``training``, ``demonstrations``, ``tuning``; defaults where absent); other names pass
    through. A ``trainable`` or ``mlm_weight`` for a method other than manual is a ConfigError naming it."""
    from ..tuning import TuningConfig, tuning_config

    base = dict(base or {})
    out = {name: value for name, value in params.items() if not is_flat(name)}
    changes: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        if name in FLAT:
            group, option = FLAT[name]
            changes.setdefault(group, {})[option] = value
    for group, options in changes.items():
        if group != "tuning":
            current = base.get(group)
            out[group] = (current if current is not None else GROUPS[group]()).replace(**options)
    tuning = base.get("tuning", "manual")
    if "source" in params or "source_options" in params or "tuning" in changes:
        name = params.get("source") or (tuning.source if isinstance(tuning, TuningConfig) else tuning or "manual")
        options = params.get("source_options")
        if options is None and isinstance(tuning, TuningConfig) and tuning.source == name:
            options = tuning
        config = tuning_config(name, options)
        out["tuning"] = config.replace(**changes["tuning"]) if "tuning" in changes else config
    return out


def warn_flat(owner: str, names: Iterable[str]) -> None:
    """The DeprecationWarning for flat keywords given to the Python API, naming each one's new spelling."""
    spelled = "; ".join(f"{name} -> tuning=<tuning config> (e.g. 'soft' or SoftPromptConfig(...))"
                        if name in FLAT_TUNING else
                        f"{name} -> tuning=<tuning config>({FLAT[name][1]}=...)" if FLAT[name][0] == "tuning" else
                        f"{name} -> {FLAT[name][0]}={_CLASS_NAMES[FLAT[name][0]]}({FLAT[name][1]}=...)"
                        for name in sorted(names))
    warnings.warn(f"{owner}: flat keywords are deprecated and will be removed in the next release: {spelled}",
                  DeprecationWarning, stacklevel=3)
