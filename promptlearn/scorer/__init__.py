"""Scorers: rendered prompts -> one log-score per class, with a masked LM or a causal LM.

Both scorers share tokenisation (with truncation that shortens only the example's fields), label-word
tokenisation in the context of the mask (so users write ``great``, never ``Ġgreat``), batching, and
reading the vocabulary distribution only at the positions that matter.

* Masked LM: ``[MASK]`` becomes ``m`` mask tokens for an ``m``-token word. Single-token words need one
  forward pass per example. Multi-token words are scored jointly, either in ``parallel`` (one pass with
  ``m`` masks: the sum of each token's log-probability at its mask) or ``left_to_right`` (PET's
  most-confident-first decoding: fill the surest mask, run again, ``m`` passes).
* Causal LM: the text before ``[MASK]`` is the prefix (computed once and cached), each label word is
  scored as its continuation (sum of its tokens' log-probabilities). Text after the mask is dropped
  (``after_mask="drop"``) or scored as part of each word's continuation (``after_mask="score"``).
  A shared context before the example (in-context demonstrations, a chat template's opening; see
  :attr:`Prompt.context <promptlearn.core.template.Prompt>`) is tokenized on its own, and when several
  prompts share it its key-value cache is computed once and reused for all of them.

Truncation shortens only the example's fields, never the template's words or the mask; in-context
demonstrations give way first (see :meth:`Scorer._truncate`).

Continuous prompts (:mod:`promptlearn.tuning`): with a ``prompt_source`` set, a ``[SOFT]`` slot is a token
boundary (the text on each side is tokenized on its own) and becomes negative placeholder ids that the
prompt set replaces by its vectors (``inputs_embeds``) right before the model runs, together with any
per-layer key/value prefixes or adapters; truncation never cuts a soft slot. The position-only head
shortcut applies unchanged; a shared causal context is then recomputed for every prompt instead of reused.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigError
from .base import (AFTER_MASK_MODES, MULTI_TOKEN_MODES, Scorer, aggregate_word_scores, aggregate_words,
                   default_max_length, vocabulary_size)
from .causal import CausalLMScorer
from .encoding import Piece
from .masked import MaskedLMScorer

__all__ = ["AFTER_MASK_MODES", "MULTI_TOKEN_MODES", "CausalLMScorer", "MaskedLMScorer", "Piece", "Scorer",
           "aggregate_word_scores", "aggregate_words", "default_max_length", "make_scorer", "vocabulary_size"]


def make_scorer(kind: str, model: Any, tokenizer: Any, *, multi_token: str = "parallel", after_mask: str = "drop",
                **options: Any) -> Scorer:
    """The scorer for a model kind (``masked`` or ``causal``)."""
    if kind == "masked":
        return MaskedLMScorer(model, tokenizer, multi_token=multi_token, **options)
    if kind == "causal":
        return CausalLMScorer(model, tokenizer, after_mask=after_mask, **options)
    raise ConfigError(f"unknown model kind {kind!r}")
