"""Masked-LM scorer: label words read at ``[MASK]`` (multi-token words in parallel or left to right)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import ConfigError, TemplateError, VerbalizerError
from ..core.template import Prompt
from .base import MULTI_TOKEN_MODES, Scorer, _fill_rows, vocabulary_size
from .encoding import Piece

logger = logging.getLogger(__name__)


@dataclass
class _MaskedRow:
    """An encoded example: its label words' token ids, and its input ids per number of masks."""

    word_ids: tuple[tuple[int, ...], ...]
    inputs: dict[int, list[int]]

    @property
    def length(self) -> int:
        return max(len(ids) for ids in self.inputs.values())


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
        self._length_checked: set[tuple[str, ...]] = set()
        self._mask_token, self._mask_id = tokenizer.mask_token, tokenizer.mask_token_id  # read per example

    def _clean_field(self, text: str) -> str:
        # A literal mask token inside the example's text would become a second mask: neutralise it (and the other
        # special tokens, as every scorer does).
        return super()._clean_field(text.replace(self._mask_token, " "))

    def _rows(self, prompts: Sequence[Prompt], jobs: Sequence[tuple[int, int]],
              indices: Sequence[int] | None = None) -> list[list[int]]:
        mask = self._mask_token
        describe = [f"example {indices[p] if indices is not None else p}" for p, _ in jobs]
        budgets = [self.max_length] * len(jobs)

        def pieces(p: int, m: int) -> list[Piece]:
            prompt = prompts[p]
            index = prompt.mask_index()
            return (self._pieces(prompt.segments[:index], prompt) + [Piece(mask * m)]
                    + self._pieces(prompt.segments[index + 1:], prompt))

        if self.prompt_source is not None:  # soft slots / named prompts: tokenized piece by piece
            encoded = self._encode([pieces(p, m) for p, m in jobs], budgets, True, describe)
        else:  # the row's text straight from its segments; pieces only for a row that must be shortened
            clean = self._clean_field

            def text(prompt: Prompt, m: int) -> str:
                parts = []
                for segment in prompt.segments:
                    if segment.kind == "soft":
                        self._pieces([segment], prompt)  # raises: a soft slot needs a continuous prompt source
                    parts.append(mask * m if segment.kind == "mask" else
                                 clean(segment.text) if segment.kind == "field" else segment.text)
                return "".join(parts)

            texts = [text(prompts[p], m) for p, m in jobs]
            encoded = self._encode_texts(texts, lambda j: pieces(*jobs[j]), budgets, True, describe)
        for (p, m), ids in zip(jobs, encoded):
            found = ids.count(self._mask_id)
            if found != m:
                raise TemplateError(f"example {indices[p] if indices is not None else p}: expected {m} mask token(s) "
                                    f"after tokenisation, found {found}")
        return encoded

    def _encode_rows(self, prompts: Sequence[Prompt], words: Sequence[str], indices: Sequence[int],
                     call: Any) -> list[_MaskedRow]:
        """One input row per (example, number of masks): every word of that token length reads it."""
        per_context: dict[tuple[str, str], tuple[tuple[int, ...], ...]] = {}
        word_ids, jobs = [], []
        for p, prompt in enumerate(prompts):
            context = self.mask_context(prompt)
            ids = per_context.get(context)
            if ids is None:
                ids = per_context[context] = tuple(self.word_ids(w, *context) for w in words)
                self._warn_uneven_lengths(words, ids)
            word_ids.append(ids)
            jobs.extend((p, m) for m in sorted({len(t) for t in ids}))
        encoded = self._rows(prompts, jobs, indices)
        rows = [_MaskedRow(ids, {}) for ids in word_ids]
        for (p, m), ids in zip(jobs, encoded):
            rows[p].inputs[m] = ids
        return rows

    def _prepare_batch(self, rows: Sequence[_MaskedRow], words: Sequence[str], call: Any) -> dict[str, Any]:
        mask_id = self._mask_id
        encoded = [ids for row in rows for ids in row.inputs.values()]
        ids, attention = self._pad_host(encoded)
        at_mask = (ids == mask_id).numpy()
        if all(len(row.inputs) == 1 and 1 in row.inputs for row in rows):  # single-token words: one mask a row
            cols = at_mask.argmax(axis=1)
            words_at = np.array([[t[0] for t in row.word_ids] for row in rows], dtype=np.int64)
            return {"ids": ids, "attention": attention, "rows": self._pinned(torch.arange(len(rows))),
                    "cols": self._pinned(torch.from_numpy(cols)), "words": self._pinned(torch.from_numpy(words_at)),
                    "n": len(rows)}
        mask_rows, mask_cols = np.nonzero(at_mask)  # row-major: each row's masks left to right
        offsets = np.concatenate([[0], np.cumsum(at_mask.sum(axis=1))])
        n_words = len(words)
        flat_rows, flat_tokens, pair_of_token, spans, encoded_rows = [], [], [], {}, {}
        r = 0
        for p, row in enumerate(rows):
            row_of = {}
            for m in row.inputs:
                row_of[m] = r
                encoded_rows[r] = row.inputs[m]
                r += 1
            for w, tokens in enumerate(row.word_ids):
                start = offsets[row_of[len(tokens)]]
                spans[(p, w)] = (len(flat_rows), row_of[len(tokens)])
                flat_rows.extend(range(start, start + len(tokens)))
                flat_tokens.extend(tokens)
                pair_of_token.extend([p * n_words + w] * len(tokens))
        as_tensor = lambda values: self._pinned(torch.as_tensor(values, dtype=torch.long))  # noqa: E731
        return {"ids": ids, "attention": attention, "rows": as_tensor(mask_rows), "cols": as_tensor(mask_cols),
                "flat_rows": as_tensor(flat_rows), "flat_tokens": as_tensor(flat_tokens),
                "pairs": as_tensor(pair_of_token), "n": len(rows), "n_words": n_words,
                "details": ([row.word_ids for row in rows], spans, encoded_rows)}

    def _run_batch(self, prepared: dict[str, Any], call: Any) -> tuple[torch.Tensor, Any]:
        device = self._to_device
        inputs = {"input_ids": device(prepared["ids"]), "attention_mask": device(prepared["attention"])}
        rows, cols = device(prepared["rows"]), device(prepared["cols"])
        log_probs, _ = self._log_probs_at(inputs, rows, cols)
        if "words" in prepared:
            return log_probs.gather(1, device(prepared["words"])), None
        token_lp = log_probs[device(prepared["flat_rows"]), device(prepared["flat_tokens"])]
        n, n_words = prepared["n"], prepared["n_words"]
        scores = torch.zeros(n * n_words, dtype=token_lp.dtype, device=token_lp.device).index_add(
            0, device(prepared["pairs"]), token_lp)
        word_ids, spans, encoded = prepared["details"]
        return scores.view(n, n_words), (word_ids, spans, token_lp, encoded)

    def _needs_refine(self, details: Any) -> bool:
        return self.multi_token == "left_to_right" and details is not None

    def _warn_uneven_lengths(self, words: Sequence[str], word_ids: Sequence[tuple[int, ...]]) -> None:
        """Warn once per word list when its words tokenise to different lengths: a word's score is the sum of
        its tokens' log-probabilities, so a longer word starts at a disadvantage the model may not overcome."""
        key = tuple(words)
        if key in self._length_checked:
            return
        self._length_checked.add(key)  # a set: adding from several threads at once is safe
        lengths = [len(ids) for ids in word_ids]
        if len(set(lengths)) > 1:
            long = ", ".join(f"{w!r} ({n} tokens)" for w, n in zip(words, lengths) if n > min(lengths))
            logger.warning("label word(s) %s take more tokens than the others (%d) with this tokenizer; a word's "
                           "score is the sum of its tokens' log-probabilities, which favours shorter words: prefer "
                           "label words of one token", long, min(lengths))

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
        return result if result is not None else torch.zeros((0, vocabulary_size(self.model)))
