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
  :attr:`Prompt.context <promptlearn.template.Prompt>`) is tokenized on its own, and when several
  prompts share it its key-value cache is computed once and reused for all of them.

Truncation shortens only the example's fields, never the template's words or the mask; in-context
demonstrations give way first (see :meth:`Scorer._truncate`).

Continuous prompts (:mod:`promptlearn.prompts`): with a ``prompt_source`` set, a ``[SOFT]`` slot is a token
boundary (the text on each side is tokenized on its own) and becomes negative placeholder ids that the
prompt set replaces by its vectors (``inputs_embeds``) right before the model runs, together with any
per-layer key/value prefixes or adapters; truncation never cuts a soft slot. The position-only head
shortcut applies unchanged; a shared causal context is then recomputed for every prompt instead of reused.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
from collections import Counter, OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import ConfigError, DemonstrationTooLongError, TemplateError, TruncationError, VerbalizerError
from .template import Prompt, Segment
from .verbalizer import Verbalizer

logger = logging.getLogger(__name__)

MULTI_TOKEN_MODES = ("parallel", "left_to_right")
AFTER_MASK_MODES = ("drop", "score")
# Models whose position ids start after the padding index, so two positions are unusable.
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer"}


@dataclass(frozen=True)
class _Piece:
    """A piece of model input text; ``shortenable`` pieces may be cut from the end to fit the window.

    ``demo``: the pool index of the in-context demonstration the piece belongs to (None: the example's own).
    ``soft``: a soft slot of that many vectors (``text`` is empty), starting at vector ``slot`` of the prompt;
    ``source``: the prompt (index in the scorer's :class:`~promptlearn.prompts.PromptSet`) the row uses.
    """

    text: str
    shortenable: bool = False
    demo: int | None = None
    soft: int = 0
    slot: int = 0
    source: int = 0


def default_max_length(model: Any, tokenizer: Any) -> int:
    """The longest input the model accepts: the tokenizer's limit and the position embeddings'."""
    limits = []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions:
        limits.append(positions - (2 if config.model_type in _POSITION_OFFSET_MODELS else 0))
    return min(limits) if limits else 512


def aggregate_word_scores(word_scores: torch.Tensor, verbalizer: Verbalizer) -> torch.Tensor:
    """Combine per-word log-probabilities ``[N, W]`` into per-class log-scores ``[N, C]`` (differentiable).

    ``mean``: log of the mean word probability; ``sum``: log of their sum; ``max``: the best word.
    """
    columns, start = [], 0
    for words in verbalizer.words:
        block = word_scores[:, start:start + len(words)]
        start += len(words)
        if verbalizer.aggregation == "max":
            columns.append(block.max(dim=1).values)
        else:
            pooled = torch.logsumexp(block, dim=1)
            columns.append(pooled - math.log(len(words)) if verbalizer.aggregation == "mean" else pooled)
    return torch.stack(columns, dim=1)


def aggregate_words(word_scores: np.ndarray, verbalizer: Verbalizer) -> np.ndarray:
    """:func:`aggregate_word_scores` on numpy arrays."""
    return aggregate_word_scores(torch.as_tensor(word_scores, dtype=torch.float64), verbalizer).numpy()


def _flat_words(verbalizer: Verbalizer) -> list[str]:
    return [word for class_words in verbalizer.words for word in class_words]


def _source_of(prompt: Prompt) -> int:
    """The index of the continuous prompt a rendered prompt uses (a :class:`~promptlearn.PromptBank` sets it)."""
    return int(getattr(prompt, "source", 0) or 0)


def _soft_offset(prompt: Prompt, segment: Segment) -> int:
    """The index of ``segment``'s first soft vector: soft slots are numbered in template order, and every
    in-context demonstration numbers its own from 0 (it repeats the template's slots)."""
    offset = 0
    for other in prompt.segments:
        if other is segment:
            return offset
        if other.kind == "soft" and other.demo == segment.demo:
            offset += other.n_soft
    raise AssertionError("segment not in its prompt")


class _PositionHead:
    """Runs a model but applies its vocabulary projection only at chosen positions.

    A forward pre-hook on the LM head swaps the hidden states ``[B, T, H]`` for the rows at the wanted
    positions, which is where almost all of a small LM's head compute goes. The hook sits on the whole
    head when it is a module of its own (BERT's ``cls``: its dense + LayerNorm transform is skipped too),
    else on the output embeddings. The shortcut is checked once against full logits, each place in turn;
    a model where it holds nowhere falls back to full logits.
    """

    def __init__(self, model: Any, forward: Any = None) -> None:
        self.model = model
        self.forward = forward or model  # the scorer's forward: injects continuous prompts when it has any
        self.head = model.get_output_embeddings()
        self.enabled: bool | None = None if self.head is not None else False
        self._hooked: Any = None  # the module the hook goes on, once checked
        self._index: tuple[torch.Tensor, torch.Tensor] | None = None

    def _places(self) -> list[Any]:
        """Where the hook may go: the model's child that holds the output embeddings (the whole head, when
        that child is not the backbone), then the output embeddings themselves."""
        places = [child for child in self.model.children()
                  if any(m is self.head for m in child.modules()) and child is not self.head
                  and child is not getattr(self.model, "base_model", None)]
        return places[:1] + [self.head]

    def _hook(self, module: Any, args: tuple) -> tuple:
        rows, cols = self._index  # type: ignore[misc]
        return (args[0][rows, cols].unsqueeze(0),) + tuple(args[1:])

    @contextmanager
    def _selecting(self, rows: torch.Tensor, cols: torch.Tensor, place: Any = None) -> Iterator[None]:
        self._index = (rows, cols)
        handle = (place if place is not None else self._hooked).register_forward_pre_hook(self._hook)
        try:
            yield
        finally:
            handle.remove()
            self._index = None

    def logits(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Logits ``[len(rows), V]`` at ``(rows, cols)``, and the model output (for its cache)."""
        if self.enabled is None:
            self.enabled = self._check(inputs, rows, cols)
        if self.enabled:
            with self._selecting(rows, cols):
                output = self.forward(**inputs)
            return output.logits.reshape(len(rows), -1), output
        output = self.forward(**inputs)
        return output.logits[rows, cols], output

    def features(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The hidden states ``[len(rows), H]`` the vocabulary projection reads at ``(rows, cols)``; the
        projection itself is skipped (a linear readout replaces it)."""
        captured: list[torch.Tensor] = []

        def hook(module: Any, args: tuple) -> None:
            hidden = args[0]
            captured.append(hidden[rows, cols] if hidden.dim() == 3 else hidden)
            raise _Captured

        handle = self.head.register_forward_pre_hook(hook)
        try:
            self.forward(**inputs)
        except _Captured:
            pass
        finally:
            handle.remove()
        if not captured:
            raise ConfigError("the model never applied its output head; a linear readout cannot read its features")
        return captured[0]

    def _check(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> bool:
        probe = {k: (v[:1] if isinstance(v, torch.Tensor) and k != "cache" else v) for k, v in inputs.items()
                 if k not in ("cache", "use_cache")}
        keep = rows == 0
        was_training = self.model.training
        # Checked in eval mode, without gradients and without touching the RNG that training reseeds.
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            self.model.eval()
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                full = self.forward(**probe).logits[0, cols[keep]]
                for place in self._places():
                    try:
                        with self._selecting(rows[keep], cols[keep], place):
                            part = self.forward(**probe).logits.reshape(int(keep.sum()), -1)
                    except Exception as exc:  # a head that cannot take the shortcut here
                        logger.debug("position-only head not at %s: %s", type(place).__name__, exc)
                        continue
                    if part.shape == full.shape and torch.allclose(part, full, atol=1e-4, rtol=1e-4):
                        self._hooked = place
                        break
        finally:
            self.model.train(was_training)
        ok = self._hooked is not None
        if not ok:
            logger.info("this model's head cannot be applied at the mask positions only; using full logits")
        return ok


class _Captured(Exception):
    """Stops a forward pass once the head's input is captured (:meth:`_PositionHead.features`)."""


class Scorer:
    """Common machinery of the masked- and causal-LM scorers.

    ``prompt_source``: a :class:`~promptlearn.prompts.PromptSet` of continuous prompts (soft slots, deep
    prefixes, adapters) injected into every forward pass; None (the default) runs the model as it is.
    """

    kind = "base"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 16, max_length: int | None = None,
                 show_progress: bool | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or default_max_length(model, tokenizer)
        self.show_progress = show_progress
        self.prompt_source: Any = None
        self._head = _PositionHead(model, self._forward)
        self._word_ids_cache: dict[tuple[str, str, str], tuple[int, ...]] = {}
        self._offsets = bool(getattr(tokenizer, "is_fast", False))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- public -------------------------------------------------------------------------------
    def score(self, prompts: Sequence[Prompt], verbalizer: Verbalizer) -> np.ndarray:
        """Class log-scores ``[N, C]`` (not normalised across classes), batched, without gradients."""
        if self._linear_readout(prompts):
            return self.readout_log_probs(prompts)
        return aggregate_words(self.word_log_probs(prompts, _flat_words(verbalizer)), verbalizer)

    def class_log_scores(self, prompts: Sequence[Prompt], verbalizer: Verbalizer) -> torch.Tensor:
        """Class log-scores ``[N, C]`` of one batch as a tensor that gradients flow through (for training).

        Multi-token words are scored in parallel (one pass); nothing is batched or detached here.
        """
        if self._linear_readout(prompts):
            return self.prompt_source.readout(self._batch_features(prompts), [_source_of(p) for p in prompts])
        return aggregate_word_scores(self._batch_word_scores(prompts, _flat_words(verbalizer))[0], verbalizer)

    # -- continuous prompts ------------------------------------------------------------------------
    def _forward(self, **inputs: Any) -> Any:
        """One model call; with a :attr:`prompt_source`, its soft vectors, prefixes or adapters are injected."""
        if self.prompt_source is None:
            return self.model(**inputs)
        return self.prompt_source.forward(self.model, inputs)

    def _linear_readout(self, prompts: Sequence[Prompt]) -> bool:
        """Whether the prompts are read by a linear head (P-tuning v2's readout) instead of label words."""
        if self.prompt_source is None or not prompts:
            return False
        linear = {self.prompt_source.linear(_source_of(p)) for p in prompts}
        if len(linear) > 1:
            raise ConfigError("prompts with a linear readout and prompts with label words in one call")
        return linear.pop()

    def readout_features(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """The hidden states the LM head reads where the label word is predicted, ``[N, H]`` (masked LM: at the
        single mask; causal LM: the last token before the mask), batched, without gradients."""
        result: torch.Tensor | None = None
        order = self._length_order(prompts)
        with torch.inference_mode():
            for chunk in self._batches(order, "features"):
                values = self._batch_features([prompts[i] for i in chunk], chunk).float().cpu()
                if result is None:
                    result = torch.zeros((len(prompts), values.shape[1]))
                result[chunk] = values
        return result if result is not None else torch.zeros((0, 0))

    def readout_log_probs(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """Class log-probabilities of linear readouts, ``[N, C]``, batched, without gradients."""
        features = self.readout_features(prompts)
        with torch.inference_mode():
            out = self.prompt_source.readout(features.to(self.device), [_source_of(p) for p in prompts])
        return out.double().cpu().numpy()

    def _batch_features(self, prompts: Sequence[Prompt], indices: Sequence[int] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def word_log_probs(self, prompts: Sequence[Prompt], words: Sequence[str]) -> np.ndarray:
        """log p(word | prompt) for every prompt and word, ``[N, W]``, batched, without gradients."""
        result = np.zeros((len(prompts), len(words)), dtype=np.float64)
        # Similar lengths together (and prompts with the same shared context, which a causal LM reuses).
        order = self._length_order(prompts, group=self._context_text)
        with torch.inference_mode(), self._reusing_contexts(prompts):
            for chunk in self._batches(order, "scoring"):
                scores, details = self._batch_word_scores([prompts[i] for i in chunk], words, chunk)
                result[chunk] = scores.double().cpu().numpy()
                self._refine(chunk, details, result)
        return result

    def _batch_word_scores(self, prompts: Sequence[Prompt], words: Sequence[str],
                           indices: Sequence[int] | None = None) -> tuple[torch.Tensor, Any]:
        """Word log-probabilities ``[len(prompts), W]`` of one batch, and details for :meth:`_refine`.

        ``indices`` are the prompts' positions in the caller's data, for error messages.
        """
        raise NotImplementedError

    def _refine(self, chunk: list[int], details: Any, result: np.ndarray) -> None:
        """Hook for decoding that needs more passes (left-to-right multi-token words)."""

    @contextmanager
    def _reusing_contexts(self, prompts: Sequence[Prompt]) -> Iterator[None]:
        """Hook: while scoring ``prompts``, reuse the computation of the contexts they share (causal LMs)."""
        yield

    def _context_text(self, prompt: Prompt) -> str:
        """The text of the prompt's shared context (its first ``prompt.context`` segments); "" when none."""
        if not prompt.context:
            return ""
        return "".join(p.text for p in self._pieces(prompt.segments[:prompt.context], prompt))

    # -- label words --------------------------------------------------------------------------
    def word_ids(self, word: str, anchor: str, separator: str) -> tuple[int, ...]:
        """Token ids of ``word`` as it reads after ``anchor + separator`` (leading-space conventions)."""
        key = (word, anchor, separator)
        if key not in self._word_ids_cache:
            base = anchor + separator
            base_ids = self.tokenizer(base, add_special_tokens=False)["input_ids"] if base else []
            full_ids = self.tokenizer(base + word, add_special_tokens=False)["input_ids"]
            common = 0
            while common < min(len(base_ids), len(full_ids)) and base_ids[common] == full_ids[common]:
                common += 1
            ids = tuple(full_ids[common:])
            if not ids:
                raise VerbalizerError(f"label word {word!r} tokenizes to nothing with this model's tokenizer")
            self._word_ids_cache[key] = ids
        return self._word_ids_cache[key]

    @staticmethod
    def mask_context(prompt: Prompt) -> tuple[str, str]:
        """(anchor, separator): the template text right before the mask, and the whitespace between."""
        index = prompt.mask_index()
        if index == 0:
            return "", ""
        before = prompt.segments[index - 1]
        stripped = before.text.rstrip()
        separator = before.text[len(stripped):]
        if before.kind == "text" and stripped:
            return stripped, separator
        return ".", separator

    # -- tokenisation with truncation ----------------------------------------------------------
    def _pieces(self, segments: Sequence[Segment], prompt: Prompt) -> list[_Piece]:
        pieces = []
        source = _source_of(prompt)
        for segment in segments:
            if segment.kind == "soft":
                if self.prompt_source is None:
                    raise TemplateError("the template has [SOFT] slots; they need a soft-prompt source "
                                        "(source='soft' or 'ptuning'), not a manual one")
                pieces.append(_Piece("", False, segment.demo, segment.n_soft, _soft_offset(prompt, segment), source))
                continue
            if segment.kind == "mask":
                raise AssertionError("mask segments are placed by the scorer")
            text = segment.text
            if segment.kind == "field":
                text = self._clean_field(text)
            pieces.append(_Piece(text, prompt.is_shortenable(segment), segment.demo, source=source))
        return pieces

    def _clean_field(self, text: str) -> str:
        return text

    def _encode(self, rows: Sequence[list[_Piece]], budgets: Sequence[int], add_special_tokens: bool,
                describe: Sequence[str]) -> list[list[int]]:
        """Token ids of each row's joined pieces, shortening shortenable pieces until within budget."""
        if self.prompt_source is not None and any(p.soft or p.source for pieces in rows for p in pieces):
            return [self._encode_prompted(list(pieces), budgets[i], add_special_tokens, describe[i])
                    for i, pieces in enumerate(rows)]
        texts = ["".join(p.text for p in pieces) for pieces in rows]
        encoded = self.tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
        out = [list(ids) for ids in encoded]
        for i, ids in enumerate(out):
            if len(ids) > budgets[i]:
                out[i] = self._truncate(list(rows[i]), budgets[i], add_special_tokens, describe[i])
        return out

    def _truncate(self, pieces: list[_Piece], budget: int, add_special_tokens: bool, describe: str,
                  keep_pieces: bool = False) -> Any:
        """Cut the longest shortenable pieces (PET-style) until the tokenised row fits ``budget``.

        In-context demonstrations give way first: while the prompt has any, their shortenable fields are
        cut (the longest first) when that is enough, else the demonstration farthest from the example is
        dropped whole (its words, label word and separator: the last one when demonstrations follow the
        example, as LM-BFF's, the first when they precede it) and the rest are tried again. Only then are
        the example's own fields shortened. The template's words and the mask are never cut. A
        demonstration longer than ``budget`` on its own is an error naming its pool example.
        ``keep_pieces``: return ``(ids, pieces)``, the pieces as shortened (soft slots are empty pieces that
        are never cut; their vectors are not counted here).
        """
        checked = False
        for _ in range(20 + len({p.demo for p in pieces})):
            text = "".join(p.text for p in pieces)
            encoding = self.tokenizer(text, add_special_tokens=add_special_tokens,
                                      return_offsets_mapping=self._offsets, return_special_tokens_mask=True)
            ids = list(encoding["input_ids"])
            excess = len(ids) - budget
            if excess <= 0:
                return (ids, pieces) if keep_pieces else ids
            starts = np.cumsum([0] + [len(p.text) for p in pieces])
            if self._offsets:
                # Every non-special token counts, zero-width ones (a lone byte-level "Ġ") included.
                spans = [span for span, special in zip(encoding["offset_mapping"], encoding["special_tokens_mask"])
                         if not special]
                token_starts = np.array([s for s, _ in spans], dtype=np.int64)
                counts = np.array([((token_starts >= starts[k]) & (token_starts < starts[k + 1])).sum()
                                   for k in range(len(pieces))])
            else:
                counts = np.array([len(self.tokenizer(p.text, add_special_tokens=False)["input_ids"]) for p in pieces])
            shortenable = np.array([p.shortenable for p in pieces], dtype=bool)
            demos = list(dict.fromkeys(p.demo for p in pieces if p.demo is not None))
            if demos:
                in_demo = np.array([p.demo is not None for p in pieces], dtype=bool)
                if not checked:
                    for demo in demos:
                        length = int(sum(c for c, p in zip(counts, pieces) if p.demo == demo))
                        if length > budget:
                            raise DemonstrationTooLongError(
                                f"{describe}: the demonstration made from pool example {demo} is {length} tokens "
                                f"long on its own, more than the {budget} a prompt may have (model window "
                                f"{self.max_length}); shorten or remove that pool example, or raise max_length")
                    checked = True
                if int(counts[shortenable & in_demo].sum()) <= excess:
                    drop = demos[-1] if pieces[-1].demo is not None else demos[0]  # the farthest from the example
                    pieces = [p for p in pieces if p.demo != drop]
                    continue
                shortenable = shortenable & in_demo
            available = int(counts[shortenable].sum())
            if available == 0 or excess > available:
                fixed = len(ids) - available
                raise TruncationError(
                    f"{describe}: the prompt needs {fixed} tokens without its shortenable fields, more than the "
                    f"{budget} available (model window {self.max_length}); shorten the template or the fixed fields"
                )
            keep = counts.copy()
            for _ in range(excess):  # remove one token at a time from the longest shortenable piece
                candidates = np.where(shortenable, keep, -1)
                keep[int(np.argmax(candidates))] -= 1
            new_pieces = []
            for k, piece in enumerate(pieces):
                if keep[k] == counts[k]:
                    new_pieces.append(piece)
                    continue
                if self._offsets:
                    ends = [e for s, e in spans if starts[k] <= s < starts[k + 1]]
                    cut = int(ends[keep[k] - 1] - starts[k]) if keep[k] > 0 else 0
                else:
                    cut = int(len(piece.text) * keep[k] / max(counts[k], 1))
                # Always remove at least one character, so the loop makes progress.
                new_pieces.append(_Piece(piece.text[:max(0, min(cut, len(piece.text) - 1))], True, piece.demo,
                                         source=piece.source))
            pieces = new_pieces
        raise TruncationError(f"{describe}: could not fit the prompt into {budget} tokens")

    def _encode_prompted(self, pieces: list[_Piece], budget: int, add_special_tokens: bool, describe: str) -> list[int]:
        """Token ids of a row with soft slots (or of a row that names its prompt): the text between soft slots is
        tokenized on its own (a soft slot is a token boundary) and each slot becomes placeholder ids that the
        prompt set fills with its vectors. Truncation shortens the fields as for any row; soft slots are never
        cut (they count against the budget)."""
        from .prompts.base import tagged_id

        source = max(p.source for p in pieces)
        ids = self._splice(pieces, add_special_tokens)
        target = budget - sum(p.soft for p in pieces)
        for _ in range(8):
            if len(ids) <= budget:
                break
            _, kept = self._truncate(pieces, target, add_special_tokens, describe, keep_pieces=True)
            ids = self._splice(kept, add_special_tokens)
            target -= max(0, len(ids) - budget)  # the text tokenized apart can take a token more than joined
        if len(ids) > budget:
            raise TruncationError(f"{describe}: could not fit the prompt and its soft slots into {budget} tokens")
        if source and not any(p.soft for p in pieces):  # name the row's prompt on its first token
            if not ids:
                ids = [self._empty_row_token()]
            ids[0] = tagged_id(source, ids[0])
        return ids

    def _splice(self, pieces: list[_Piece], add_special_tokens: bool) -> list[int]:
        from .prompts.base import soft_id

        runs: list[str] = []
        slots: list[_Piece] = []
        text = ""
        for piece in pieces:
            if piece.soft:
                runs.append(text)
                slots.append(piece)
                text = ""
            else:
                text += piece.text
        runs.append(text)
        encoded = self.tokenizer(runs, add_special_tokens=False)["input_ids"]
        body: list[int] = list(encoded[0])
        for slot, run in zip(slots, encoded[1:]):
            body += [soft_id(slot.source, slot.slot + j) for j in range(slot.soft)] + list(run)
        if not add_special_tokens:
            return body
        before, after = self._special_wrap()
        return before + body + after

    def _special_wrap(self) -> tuple[list[int], list[int]]:
        """The special tokens the tokenizer puts before and after a text (e.g. [CLS] / [SEP], BOS)."""
        wrap = getattr(self, "_wrap_cache", None)
        if wrap is None:
            plain = list(self.tokenizer("a", add_special_tokens=False)["input_ids"])
            full = list(self.tokenizer("a", add_special_tokens=True)["input_ids"])
            start = next((i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain), None)
            if start is None:
                raise ConfigError("cannot tell where this tokenizer puts its special tokens; soft slots need that")
            wrap = self._wrap_cache = (full[:start], full[start + len(plain):])
        return wrap

    def _empty_row_token(self) -> int:
        raise TemplateError("a prompt rendered to no tokens at all")

    # -- running the model --------------------------------------------------------------------
    def _token_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        """Each prompt's length in tokens (its rendered text, one batched tokenizer call): batches of similar
        token lengths pad ~15 % fewer tokens than batches sorted by characters."""
        if not prompts:
            return []
        encoded = self.tokenizer([p.text for p in prompts], add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _length_order(self, prompts: Sequence[Prompt], group: Any = None) -> list[int]:
        """Prompt indices, longest first (see :meth:`_token_lengths`); with ``group`` (prompt -> key), prompts
        with the same key are kept together first."""
        lengths = self._token_lengths(prompts)
        if group is None:
            return sorted(range(len(prompts)), key=lambda i: -lengths[i])
        return sorted(range(len(prompts)), key=lambda i: (group(prompts[i]), -lengths[i]))

    def _batches(self, order: Sequence[int], desc: str) -> Iterator[list[int]]:
        show = self.show_progress if self.show_progress is not None else sys.stderr.isatty()
        with tqdm(total=len(order), desc=desc, disable=not show, unit="ex") as bar:
            for start in range(0, len(order), self.batch_size):
                chunk = list(order[start:start + self.batch_size])
                yield chunk
                bar.update(len(chunk))

    def _pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, :len(row)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _log_probs_at(self, inputs: dict[str, Any], rows: Sequence[int] | torch.Tensor,
                      cols: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, Any]:
        row_t = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        col_t = torch.as_tensor(cols, dtype=torch.long, device=self.device)
        logits, output = self._head.logits(inputs, row_t, col_t)
        return torch.log_softmax(logits.float(), dim=-1), output


class MaskedLMScorer(Scorer):
    """Scores label words at the mask(s) of any ``AutoModelForMaskedLM``."""

    kind = "masked"

    def __init__(self, model: Any, tokenizer: Any, *, multi_token: str = "parallel", **options: Any) -> None:
        super().__init__(model, tokenizer, **options)
        if multi_token not in MULTI_TOKEN_MODES:
            raise ConfigError(f"multi_token must be one of {MULTI_TOKEN_MODES}, got {multi_token!r}")
        if tokenizer.mask_token_id is None:
            raise VerbalizerError("the tokenizer has no mask token; use a masked LM or the causal scorer")
        self.multi_token = multi_token

    def _clean_field(self, text: str) -> str:
        # A literal mask token inside the example's text would become a second mask: neutralise it.
        return text.replace(self.tokenizer.mask_token, " ")

    def _rows(self, prompts: Sequence[Prompt], jobs: Sequence[tuple[int, int]],
              indices: Sequence[int] | None = None) -> list[list[int]]:
        rows, budgets, describe = [], [], []
        mask = self.tokenizer.mask_token
        for p, m in jobs:
            prompt = prompts[p]
            index = prompt.mask_index()
            pieces = (self._pieces(prompt.segments[:index], prompt) + [_Piece(mask * m)]
                      + self._pieces(prompt.segments[index + 1:], prompt))
            rows.append(pieces)
            budgets.append(self.max_length)
            describe.append(f"example {indices[p] if indices is not None else p}")
        encoded = self._encode(rows, budgets, True, describe)
        for (p, m), ids in zip(jobs, encoded):
            found = ids.count(self.tokenizer.mask_token_id)
            if found != m:
                raise TemplateError(f"example {indices[p] if indices is not None else p}: expected {m} mask token(s) "
                                    f"after tokenisation, found {found}")
        return encoded

    def _batch_word_scores(self, prompts: Sequence[Prompt], words: Sequence[str],
                           indices: Sequence[int] | None = None) -> tuple[torch.Tensor, Any]:
        n_words = len(words)
        ids_per_prompt = []
        for prompt in prompts:
            anchor, separator = self.mask_context(prompt)
            ids_per_prompt.append([self.word_ids(w, anchor, separator) for w in words])
        # One input row per (example, number of masks): every word of that token length reads it.
        jobs = sorted({(p, len(ids)) for p, word_ids in enumerate(ids_per_prompt) for ids in word_ids})
        encoded = self._rows(prompts, jobs, indices)
        ids, attention = self._pad(encoded)
        at_mask = ids == self.tokenizer.mask_token_id
        rows, cols = at_mask.nonzero(as_tuple=True)  # row-major: each row's masks left to right
        log_probs, _ = self._log_probs_at({"input_ids": ids, "attention_mask": attention}, rows, cols)
        offsets = np.concatenate([[0], np.cumsum(at_mask.sum(dim=1).cpu().numpy())])
        row_of = {job: r for r, job in enumerate(jobs)}
        flat_rows, flat_tokens, pair_of_token, spans = [], [], [], {}
        for p, word_ids in enumerate(ids_per_prompt):
            for w, tokens in enumerate(word_ids):
                start = offsets[row_of[(p, len(tokens))]]
                spans[(p, w)] = (len(flat_rows), row_of[(p, len(tokens))])
                flat_rows.extend(range(start, start + len(tokens)))
                flat_tokens.extend(tokens)
                pair_of_token.extend([p * n_words + w] * len(tokens))
        token_lp = log_probs[torch.as_tensor(flat_rows, device=log_probs.device),
                             torch.as_tensor(flat_tokens, device=log_probs.device)]
        scores = torch.zeros(len(prompts) * n_words, dtype=token_lp.dtype, device=token_lp.device).index_add(
            0, torch.as_tensor(pair_of_token, device=token_lp.device), token_lp)
        details = (ids_per_prompt, spans, token_lp, encoded)
        return scores.view(len(prompts), n_words), details

    def _batch_features(self, prompts: Sequence[Prompt], indices: Sequence[int] | None = None) -> torch.Tensor:
        encoded = self._rows(prompts, [(i, 1) for i in range(len(prompts))], indices)
        ids, attention = self._pad(encoded)
        cols = [row.index(self.tokenizer.mask_token_id) for row in encoded]
        return self._head.features({"input_ids": ids, "attention_mask": attention},
                                   torch.arange(len(prompts), device=self.device),
                                   torch.as_tensor(cols, device=self.device))

    def _refine(self, chunk: list[int], details: Any, result: np.ndarray) -> None:
        if self.multi_token != "left_to_right":
            return
        ids_per_prompt, spans, token_lp, encoded = details
        mask_id = self.tokenizer.mask_token_id
        pending = []
        for (p, w), (start, row) in spans.items():
            tokens = ids_per_prompt[p][w]
            if len(tokens) == 1:
                continue
            values = token_lp[start:start + len(tokens)]
            best = int(values.argmax())
            result[chunk[p], w] = float(values[best])
            filled = list(encoded[row])
            first = filled.index(mask_id)
            filled[first + best] = tokens[best]  # a word's masks are consecutive
            pending.append((chunk[p], w, filled, first, tokens))
        if pending:
            self._left_to_right(pending, result, self.tokenizer.mask_token_id)

    def _left_to_right(self, pending: list[tuple[int, int, list[int], int, tuple[int, ...]]], result: np.ndarray,
                       mask_id: int) -> None:
        """PET decoding: repeatedly fill the remaining mask whose word token is most probable, and run again.

        Each pending entry is (example, word, ids with some masks filled, first mask position, word tokens).
        """
        while pending:
            next_round = []
            order = sorted(range(len(pending)), key=lambda i: -len(pending[i][2]))
            for chunk in self._batches(order, "left-to-right"):
                ids, attention = self._pad([pending[i][2] for i in chunk])
                remaining = []
                for i in chunk:
                    _, _, filled, start, tokens = pending[i]
                    remaining.append([start + k for k in range(len(tokens)) if filled[start + k] == mask_id])
                rows = [r for r, pos in enumerate(remaining) for _ in pos]
                cols = [c for pos in remaining for c in pos]
                log_probs, _ = self._log_probs_at({"input_ids": ids, "attention_mask": attention}, rows, cols)
                offset = 0
                for r, i in enumerate(chunk):
                    p, w, filled, start, tokens = pending[i]
                    wanted = torch.as_tensor([tokens[pos - start] for pos in remaining[r]])
                    token_lp = log_probs[offset + torch.arange(len(wanted)), wanted]
                    offset += len(wanted)
                    best = int(token_lp.argmax())
                    result[p, w] += float(token_lp[best])
                    if len(wanted) > 1:
                        filled = list(filled)
                        filled[remaining[r][best]] = tokens[remaining[r][best] - start]
                        next_round.append((p, w, filled, start, tokens))
            pending = next_round

    def vocabulary_log_probs(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """log p(token | prompt) over the whole vocabulary at each prompt's (single) mask, ``[N, V]``.

        Float32 on the CPU, batched, without gradients; for label-word and template search.
        """
        result = None
        order = self._length_order(prompts)
        with torch.inference_mode():
            for chunk in self._batches(order, "vocabulary"):
                encoded = self._rows([prompts[i] for i in chunk], [(k, 1) for k in range(len(chunk))], chunk)
                ids, attention = self._pad(encoded)
                cols = [row.index(self.tokenizer.mask_token_id) for row in encoded]
                log_probs, _ = self._log_probs_at({"input_ids": ids, "attention_mask": attention},
                                                  list(range(len(chunk))), cols)
                result = _fill_rows(result, len(prompts), chunk, log_probs)
        return result if result is not None else torch.zeros((0, _vocabulary_size(self.model)))


class CausalLMScorer(Scorer):
    """Scores each label word as the continuation of the text before ``[MASK]`` with an ``AutoModelForCausalLM``."""

    kind = "causal"
    _CONTEXTS_KEPT = 4  # key-value caches of shared contexts kept while scoring (prompts come grouped by context)

    def __init__(self, model: Any, tokenizer: Any, *, after_mask: str = "drop", prefix_cache: bool = True,
                 **options: Any) -> None:
        super().__init__(model, tokenizer, **options)
        if after_mask not in AFTER_MASK_MODES:
            raise ConfigError(f"after_mask must be one of {AFTER_MASK_MODES}, got {after_mask!r}")
        self.after_mask = after_mask
        self._start_token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        # Reuse the key-value cache of a context (demonstrations) shared by several prompts of one scoring call.
        self.prefix_cache = prefix_cache
        self._shared: set[str] = set()
        self._store: OrderedDict[str, tuple[list[int], Any]] | None = None
        self._context_ids_cache: OrderedDict[str, list[int]] = OrderedDict()
        # How often a context was computed, and how many prompts were scored on a reused one (for tests and timing).
        self.context_stats = {"computed": 0, "reused_rows": 0}

    def _continuations(self, prompt: Prompt, words: Sequence[str]) -> list[tuple[int, ...]]:
        anchor, separator = self.mask_context(prompt)
        if self.after_mask == "drop":
            return [self.word_ids(w, anchor, separator) for w in words]
        index = prompt.mask_index()
        if any(s.kind == "soft" for s in prompt.segments[index + 1:]):
            raise TemplateError("after_mask='score' cannot score [SOFT] slots after [MASK]; put the soft slots before "
                                "the mask or use after_mask='drop'")
        suffix = "".join(p.text for p in self._pieces(prompt.segments[index + 1:], prompt))
        return [self.word_ids(w + suffix, anchor, separator) for w in words]

    def _prefix_pieces(self, prompt: Prompt, start: int = 0) -> list[_Piece]:
        index = prompt.mask_index()
        pieces = self._pieces(prompt.segments[start:index], prompt)
        # The space before the mask belongs to the word's first token (" great"), not to the prefix.
        if pieces and not pieces[-1].soft:
            pieces[-1] = _Piece(pieces[-1].text.rstrip(" "), pieces[-1].shortenable, pieces[-1].demo,
                                source=pieces[-1].source)
        return pieces

    def _empty_row_token(self) -> int:
        if self._start_token is None:
            raise TemplateError("a causal LM needs text before [MASK], and this tokenizer has no BOS/EOS "
                                "token to start from; put the mask at the end of the template")
        return self._start_token

    def _batch_features(self, prompts: Sequence[Prompt], indices: Sequence[int] | None = None) -> torch.Tensor:
        n = len(prompts)
        pieces = [self._prefix_pieces(prompt) for prompt in prompts]
        describe = [f"example {i}" for i in (indices if indices is not None else range(n))]
        prefixes = self._encode(pieces, [self.max_length] * n, True, describe)
        prefixes = [ids or [self._empty_row_token()] for ids in prefixes]
        ids, attention = self._pad(prefixes)
        return self._head.features({"input_ids": ids, "attention_mask": attention, "use_cache": False},
                                   torch.arange(n, device=self.device),
                                   torch.as_tensor([len(p) - 1 for p in prefixes], device=self.device))

    # -- shared contexts (demonstrations before the example) ------------------------------------
    @contextmanager
    def _reusing_contexts(self, prompts: Sequence[Prompt]) -> Iterator[None]:
        if not self.prefix_cache or self.prompt_source is not None:  # continuous prompts: no context reuse
            yield
            return
        counts = Counter(self._context_text(p) for p in prompts if p.context)
        self._shared = {text for text, count in counts.items() if count > 1}
        self._store = OrderedDict()
        try:
            yield
        finally:
            self._shared, self._store = set(), None

    def _context_ids(self, text: str) -> list[int]:
        """Token ids of a shared context, tokenized on its own (with the tokenizer's special tokens, e.g. BOS)."""
        ids = self._context_ids_cache.get(text)
        if ids is None:
            ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
            self._context_ids_cache[text] = ids
            if len(self._context_ids_cache) > 64:
                self._context_ids_cache.popitem(last=False)
        return ids

    def _prefix_ids(self, prompts: Sequence[Prompt], budgets: Sequence[int],
                    describe: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of each prompt's text before the mask, and the length of its shared context (0: none).

        A prompt with a context is tokenized in two parts, the context (with special tokens) and the rest
        (without), so that its context's ids are the same for every prompt that shares it; when the two do
        not fit the budget together, the whole prompt is truncated (demonstrations first) as one text.
        """
        out: list[list[int] | None] = [None] * len(prompts)
        contexts = [0] * len(prompts)
        joint = []
        for i, prompt in enumerate(prompts):
            if prompt.context and self.prompt_source is None:  # continuous prompts: tokenized as one text
                context = self._context_ids(self._context_text(prompt))
                rest_text = "".join(p.text for p in self._prefix_pieces(prompt, prompt.context))
                rest = list(self.tokenizer(rest_text, add_special_tokens=False)["input_ids"]) if rest_text else []
                if len(context) + len(rest) <= budgets[i]:
                    out[i], contexts[i] = context + rest, len(context)
                    continue
            joint.append(i)
        if joint:
            encoded = self._encode([self._prefix_pieces(prompts[i]) for i in joint], [budgets[i] for i in joint],
                                   True, [describe[i] for i in joint])
            for i, ids in zip(joint, encoded):
                out[i] = ids
        return out, contexts  # type: ignore[return-value]

    def _context_cache(self, text: str) -> tuple[list[int], Any]:
        """The ids of a shared context and its key-value cache (batch of one), computed once per scoring call."""
        assert self._store is not None
        if text in self._store:
            self._store.move_to_end(text)
            return self._store[text]
        ids = self._context_ids(text)
        row = torch.as_tensor([ids], dtype=torch.long, device=self.device)
        inputs = {"input_ids": row, "attention_mask": torch.ones_like(row), "use_cache": True}
        _, output = self._log_probs_at(inputs, [0], [len(ids) - 1])
        self._store[text] = (ids, output.cache)
        self.context_stats["computed"] += 1
        if len(self._store) > self._CONTEXTS_KEPT:
            self._store.popitem(last=False)
        return self._store[text]

    def _batch_word_scores(self, prompts: Sequence[Prompt], words: Sequence[str],
                           indices: Sequence[int] | None = None) -> tuple[torch.Tensor, Any]:
        n = len(prompts)
        continuations = [self._continuations(prompt, words) for prompt in prompts]
        budgets = [self.max_length - max(len(c) for c in conts) + 1 for conts in continuations]
        prefixes, contexts = self._prefix_ids(prompts, budgets,
                                              [f"example {i}" for i in (indices if indices is not None else range(n))])
        for i, ids in enumerate(prefixes):
            if not ids:
                if self._start_token is None:
                    raise TemplateError("a causal LM needs text before [MASK], and this tokenizer has no BOS/EOS "
                                        "token to start from; put the mask at the end of the template")
                prefixes[i] = [self._start_token]
        groups: dict[str, list[int]] = {}
        if self._store is not None and not torch.is_grad_enabled():  # inference: reuse shared contexts
            for i, prompt in enumerate(prompts):
                if contexts[i] and len(prefixes[i]) > contexts[i]:
                    text = self._context_text(prompt)
                    if text in self._shared:
                        groups.setdefault(text, []).append(i)
        if not groups:
            return self._prefix_scores(prefixes, continuations, None), None
        grouped = {i for rows in groups.values() for i in rows}
        parts = [([i for i in range(n) if i not in grouped], None)] + [(rows, text) for text, rows in groups.items()]
        scores = None
        for rows, text in parts:
            if rows:
                values = self._prefix_scores([prefixes[i] for i in rows], [continuations[i] for i in rows], text)
                if scores is None:
                    scores = values.new_zeros((n, len(words)))
                scores[torch.as_tensor(rows, device=values.device)] = values
        return scores, None

    def _prefix_scores(self, prefixes: list[list[int]], continuations: list[list[tuple[int, ...]]],
                       context: str | None) -> torch.Tensor:
        """Word log-probabilities ``[len(prefixes), W]`` after each prefix; with ``context``, every prefix starts
        with that shared context, whose cached keys and values are reused instead of being recomputed."""
        n, n_words = len(prefixes), len(continuations[0])
        lengths = [len(p) for p in prefixes]
        multi = [(r, w) for r in range(n) for w, c in enumerate(continuations[r]) if len(c) > 1]
        if context is None:
            ids, attention = self._pad(prefixes)
            inputs = {"input_ids": ids, "attention_mask": attention, "use_cache": bool(multi)}
            log_probs, output = self._log_probs_at(inputs, list(range(n)), [length - 1 for length in lengths])
        else:
            context_ids, context_cache = self._context_cache(context)
            width = len(context_ids)
            ids, rest_mask = self._pad([p[width:] for p in prefixes])
            attention = torch.cat([rest_mask.new_ones((n, width)), rest_mask], dim=1)
            cache = copy.deepcopy(context_cache)  # the model extends the cache it is given
            cache.batch_repeat_interleave(n)
            positions = (width + torch.arange(ids.shape[1], device=ids.device)).unsqueeze(0).repeat(n, 1)
            inputs = {"input_ids": ids, "attention_mask": attention, "position_ids": positions, "cache": cache,
                      "use_cache": True}
            log_probs, output = self._log_probs_at(inputs, list(range(n)), [length - 1 - width for length in lengths])
            self.context_stats["reused_rows"] += n
        first = torch.as_tensor([[c[0] for c in conts] for conts in continuations], device=log_probs.device)
        scores = log_probs.gather(1, first)
        if multi:
            # Training (gradients on) scores every continuation in one pass; inference in chunks.
            size = len(multi) if torch.is_grad_enabled() else self.batch_size
            parts = [multi[k:k + size] for k in range(0, len(multi), size)]
            flat = scores.flatten()
            for k, part in enumerate(parts):
                values = self._continuation_scores(part, lengths, attention, output.cache, continuations,
                                                   copy_cache=k < len(parts) - 1)
                index = torch.as_tensor([r * n_words + w for r, w in part], device=flat.device)
                flat = flat.index_add(0, index, values)
            scores = flat.view(n, n_words)
        return scores

    def _continuation_scores(self, part: list[tuple[int, int]], lengths: list[int], attention: torch.Tensor,
                             cache: Any, continuations: list[list[tuple[int, ...]]], copy_cache: bool) -> torch.Tensor:
        """log p(tokens 1..m-1 | prefix, token 0) of each (example, word) pair, fed after the cached prefix."""
        select = torch.as_tensor([r for r, _ in part], device=self.device)
        if copy_cache:  # later chunks still need the batch's cache as it is
            cache = copy.deepcopy(cache)
        cache.batch_select_indices(select)
        fed = [list(continuations[r][w][:-1]) for r, w in part]
        cont_ids, cont_mask = self._pad(fed)
        positions = torch.stack([lengths[r] + torch.arange(cont_ids.shape[1]) for r, _ in part]).to(self.device)
        inputs = {"input_ids": cont_ids, "attention_mask": torch.cat([attention[select], cont_mask], dim=1),
                  "position_ids": positions, "cache": cache, "use_cache": True}
        rows = [k for k, tokens in enumerate(fed) for _ in tokens]
        cols = [j for tokens in fed for j in range(len(tokens))]
        log_probs, _ = self._log_probs_at(inputs, rows, cols)
        targets = torch.as_tensor([t for r, w in part for t in continuations[r][w][1:]], device=log_probs.device)
        token_lp = log_probs[torch.arange(len(rows), device=log_probs.device), targets]
        pair_of_token = torch.as_tensor(rows, device=token_lp.device)
        return torch.zeros(len(part), dtype=token_lp.dtype, device=token_lp.device).index_add(0, pair_of_token, token_lp)

    def vocabulary_log_probs(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """log p(next token | text before ``[MASK]``) over the whole vocabulary, ``[N, V]``.

        The space before the mask belongs to the next token (`` great``), as in :meth:`word_log_probs`.
        Float32 on the CPU, batched, without gradients; for label-word and template search.
        """
        result = None
        order = self._length_order(prompts)
        with torch.inference_mode():
            for chunk in self._batches(order, "vocabulary"):
                pieces = [self._prefix_pieces(prompts[i]) for i in chunk]
                prefixes = self._encode(pieces, [self.max_length] * len(chunk), True, [f"example {i}" for i in chunk])
                if any(not ids for ids in prefixes) and self._start_token is None:
                    raise TemplateError("a causal LM needs text before [MASK], and this tokenizer has no BOS/EOS "
                                        "token to start from; put the mask at the end of the template")
                prefixes = [ids or [self._start_token] for ids in prefixes]
                ids, attention = self._pad(prefixes)
                log_probs, _ = self._log_probs_at({"input_ids": ids, "attention_mask": attention, "use_cache": False},
                                                  list(range(len(chunk))), [len(p) - 1 for p in prefixes])
                result = _fill_rows(result, len(prompts), chunk, log_probs)
        return result if result is not None else torch.zeros((0, _vocabulary_size(self.model)))


def _vocabulary_size(model: Any) -> int:
    """The width of the model's logits (its output embedding rows)."""
    weight = getattr(model.get_output_embeddings(), "weight", None)
    return int(weight.shape[0]) if weight is not None else int(model.config.vocab_size)


def _fill_rows(result: torch.Tensor | None, n: int, chunk: list[int], log_probs: torch.Tensor) -> torch.Tensor:
    """Put a batch's ``[B, V]`` log-probabilities at rows ``chunk`` of an ``[n, V]`` result (made on first use)."""
    if result is None:
        result = torch.zeros((n, log_probs.shape[1]))
    result[chunk] = log_probs.float().cpu()
    return result


def make_scorer(kind: str, model: Any, tokenizer: Any, *, multi_token: str = "parallel", after_mask: str = "drop",
                **options: Any) -> Scorer:
    """The scorer for a model kind (``masked`` or ``causal``)."""
    if kind == "masked":
        return MaskedLMScorer(model, tokenizer, multi_token=multi_token, **options)
    if kind == "causal":
        return CausalLMScorer(model, tokenizer, after_mask=after_mask, **options)
    raise ConfigError(f"unknown model kind {kind!r}")
