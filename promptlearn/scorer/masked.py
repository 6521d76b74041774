"""Masked-LM scorer: label words read at ``[MASK]`` (multi-token words in parallel or left to right)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, TemplateError, VerbalizerError
from ..template import Prompt
from .base import MULTI_TOKEN_MODES, Scorer, _fill_rows, _Piece, _vocabulary_size

logger = logging.getLogger(__name__)


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
        if prompts:
            self._warn_uneven_lengths(words, ids_per_prompt[0])
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

    def _warn_uneven_lengths(self, words: Sequence[str], word_ids: Sequence[tuple[int, ...]]) -> None:
        """Warn once per word list when its words tokenise to different lengths: a word's score is the sum of
        its tokens' log-probabilities, so a longer word starts at a disadvantage the model may not overcome."""
        key = tuple(words)
        if key in self._length_checked:
            return
        self._length_checked.add(key)
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
        return result if result is not None else torch.zeros((0, _vocabulary_size(self.model)))
