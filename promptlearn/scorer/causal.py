"""Causal-LM scorer: label words scored as continuations of the prefix, with a shared cached context."""

from __future__ import annotations

import copy
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ..models import compat
from ..core.errors import ConfigError, TemplateError
from ..core.template import Prompt
from .base import AFTER_MASK_MODES, Scorer, _fill_rows, vocabulary_size
from .encoding import Piece


@dataclass
class _CallState:
    """One scoring call's shared contexts: those used by more than one prompt, and their cached keys/values."""

    shared: set[str]
    store: OrderedDict[str, tuple[list[int], Any]]


@dataclass
class _CausalRow:
    """An encoded example: the ids before the mask, each word's continuation ids, its shared context (or None)."""

    prefix: list[int]
    continuations: list[tuple[int, ...]]
    context: str | None

    @property
    def length(self) -> int:
        return len(self.prefix)


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
        self._context_ids_cache: OrderedDict[str, list[int]] = OrderedDict()
        self._context_lock = threading.Lock()
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

    def _prefix_pieces(self, prompt: Prompt, start: int = 0) -> list[Piece]:
        index = prompt.mask_index()
        pieces = self._pieces(prompt.segments[start:index], prompt)
        # The space before the mask belongs to the word's first token (" great"), not to the prefix.
        if pieces and not pieces[-1].soft:
            pieces[-1] = Piece(pieces[-1].text.rstrip(" "), pieces[-1].shortenable, pieces[-1].demo,
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
    def _reusing_contexts(self, prompts: Sequence[Prompt]) -> Iterator[_CallState | None]:
        if not self.prefix_cache or self.prompt_source is not None:  # continuous prompts: no context reuse
            yield None
            return
        counts = Counter(self._context_text(p) for p in prompts if p.context)
        yield _CallState({text for text, count in counts.items() if count > 1}, OrderedDict())

    def _group_order(self, prompts: Sequence[Prompt]) -> list[int]:
        if not any(p.context for p in prompts):
            return list(range(len(prompts)))
        keys = [self._context_text(p) for p in prompts]  # prompts sharing a context together (stable)
        return sorted(range(len(prompts)), key=keys.__getitem__)

    def _context_ids(self, text: str) -> list[int]:
        """Token ids of a shared context, tokenized on its own (with the tokenizer's special tokens, e.g. BOS)."""
        with self._context_lock:
            ids = self._context_ids_cache.get(text)
        if ids is None:
            ids = self._tokenize([text], True)[0]
            with self._context_lock:
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
                rest = self._tokenize([rest_text], False)[0] if rest_text else []
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

    def _context_cache(self, text: str, call: _CallState) -> tuple[list[int], Any]:
        """The ids of a shared context and its key-value cache (batch of one), computed once per scoring call."""
        if text in call.store:
            call.store.move_to_end(text)
            return call.store[text]
        ids = self._context_ids(text)
        row = torch.as_tensor([ids], dtype=torch.long, device=self.device)
        inputs = {"input_ids": row, "attention_mask": torch.ones_like(row), "use_cache": True}
        _, output = self._log_probs_at(inputs, [0], [len(ids) - 1])
        call.store[text] = (ids, compat.output_cache(output))
        self.context_stats["computed"] += 1
        if len(call.store) > self._CONTEXTS_KEPT:
            call.store.popitem(last=False)
        return call.store[text]

    def _encode_rows(self, prompts: Sequence[Prompt], words: Sequence[str], indices: Sequence[int],
                     call: _CallState | None) -> list[_CausalRow]:
        continuations = [self._continuations(prompt, words) for prompt in prompts]
        budgets = [self.max_length - max(len(c) for c in conts) + 1 for conts in continuations]
        prefixes, contexts = self._prefix_ids(prompts, budgets, [f"example {i}" for i in indices])
        rows = []
        for prompt, ids, conts, context in zip(prompts, prefixes, continuations, contexts):
            if not ids:
                if self._start_token is None:
                    raise TemplateError("a causal LM needs text before [MASK], and this tokenizer has no BOS/EOS "
                                        "token to start from; put the mask at the end of the template")
                ids = [self._start_token]
            shared = None
            if call is not None and context and len(ids) > context:  # may reuse the context's cache
                text = self._context_text(prompt)
                shared = text if text in call.shared else None
            rows.append(_CausalRow(ids, conts, shared))
        return rows

    def _prepare_batch(self, rows: Sequence[_CausalRow], words: Sequence[str],
                       call: _CallState | None) -> Sequence[_CausalRow]:
        return rows

    def _run_batch(self, rows: Sequence[_CausalRow], call: _CallState | None) -> tuple[torch.Tensor, Any]:
        n, n_words = len(rows), len(rows[0].continuations)
        groups: dict[str | None, list[int]] = {}
        reuse = call is not None and not torch.is_grad_enabled()  # inference: reuse shared contexts
        for i, row in enumerate(rows):
            groups.setdefault(row.context if reuse else None, []).append(i)
        if list(groups) == [None]:
            return self._prefix_scores([r.prefix for r in rows], [r.continuations for r in rows], None, call), None
        scores = None
        for text, members in groups.items():
            values = self._prefix_scores([rows[i].prefix for i in members], [rows[i].continuations for i in members],
                                         text, call)
            if scores is None:
                scores = values.new_zeros((n, n_words))
            scores[torch.as_tensor(members, device=values.device)] = values
        return scores, None

    def _prefix_scores(self, prefixes: list[list[int]], continuations: list[list[tuple[int, ...]]],
                       context: str | None, call: _CallState | None) -> torch.Tensor:
        """Word log-probabilities ``[len(prefixes), W]`` after each prefix; with ``context``, every prefix starts
        with that shared context, whose cached keys and values are reused instead of being recomputed."""
        n, n_words = len(prefixes), len(continuations[0])
        lengths = [len(p) for p in prefixes]
        multi = [(r, w) for r in range(n) for w, c in enumerate(continuations[r]) if len(c) > 1]
        if context is None:
            ids, attention = self._pad(prefixes)
            inputs = {"input_ids": ids, "attention_mask": attention, "use_cache": bool(multi)}
            log_probs, output = self._log_probs_at(inputs, self._indices(range(n)),
                                                   self._indices([length - 1 for length in lengths]))
        else:
            context_ids, context_cache = self._context_cache(context, call)  # type: ignore[arg-type]
            width = len(context_ids)
            ids, rest_mask = self._pad([p[width:] for p in prefixes])
            attention = torch.cat([rest_mask.new_ones((n, width)), rest_mask], dim=1)
            cache = copy.deepcopy(context_cache)  # the model extends the cache it is given
            cache.batch_repeat_interleave(n)
            positions = (width + torch.arange(ids.shape[1], device=ids.device)).unsqueeze(0).repeat(n, 1)
            inputs = {"input_ids": ids, "attention_mask": attention, "position_ids": positions,
                      compat.CACHE_NAME: cache, "use_cache": True}
            log_probs, output = self._log_probs_at(inputs, self._indices(range(n)),
                                                   self._indices([length - 1 - width for length in lengths]))
            self.context_stats["reused_rows"] += n
        first = self._indices([[c[0] for c in conts] for conts in continuations])
        scores = log_probs.gather(1, first)
        if multi:
            # Training (gradients on) scores every continuation in one pass; inference in chunks.
            size = len(multi) if torch.is_grad_enabled() else self.batch_size
            parts = [multi[k:k + size] for k in range(0, len(multi), size)]
            flat = scores.flatten()
            for k, part in enumerate(parts):
                values = self._continuation_scores(part, lengths, attention, compat.output_cache(output), continuations,
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
                  "position_ids": positions, compat.CACHE_NAME: cache, "use_cache": True}
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
        return result if result is not None else torch.zeros((0, vocabulary_size(self.model)))
