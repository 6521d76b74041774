"""Rows of model input for the scorers: the torch-free text encoding (:mod:`promptlearn.core.encoding`: pieces,
mask-safe truncation, the special-token guard) plus soft slots spliced in as placeholder ids (:mod:`.token_ids`).
:class:`RowEncoding` is a base of :class:`~promptlearn.scorer.base.Scorer`."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.encoding import Piece, TextEncoding, _checked_backend, _encode_batch, _soft_offset, _source_of
from ..core.errors import ConfigError, TemplateError, TruncationError
from .token_ids import soft_id, tagged_id

__all__ = ["Piece", "RowEncoding", "_checked_backend", "_encode_batch", "_soft_offset", "_source_of"]


class RowEncoding(TextEncoding):
    """Tokenisation with truncation, shared by the scorers: prompt segments -> pieces -> token ids within a budget,
    soft slots included (see :class:`~promptlearn.core.encoding.TextEncoding` for what the methods read)."""

    def _encode(self, rows: Sequence[list[Piece]], budgets: Sequence[int], add_special_tokens: bool,
                describe: Sequence[str]) -> list[list[int]]:
        """Token ids of each row's joined pieces, shortening shortenable pieces until within budget."""
        if self.prompt_source is not None and any(p.soft or p.source for pieces in rows for p in pieces):
            return [self._encode_prompted(list(pieces), budgets[i], add_special_tokens, describe[i])
                    for i, pieces in enumerate(rows)]
        texts = ["".join(p.text for p in pieces) for pieces in rows]
        return self._encode_texts(texts, lambda i: list(rows[i]), budgets, add_special_tokens, describe)

    def _encode_prompted(self, pieces: list[Piece], budget: int, add_special_tokens: bool, describe: str) -> list[int]:
        """Token ids of a row with soft slots (or of a row that names its prompt): the text between soft slots is
        tokenized on its own (a soft slot is a token boundary) and each slot becomes placeholder ids that the
        prompt set fills with its vectors. Truncation shortens the fields as for any row; soft slots are never
        cut (they count against the budget)."""
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

    def _splice(self, pieces: list[Piece], add_special_tokens: bool) -> list[int]:
        runs: list[str] = []
        slots: list[Piece] = []
        text = ""
        for piece in pieces:
            if piece.soft:
                runs.append(text)
                slots.append(piece)
                text = ""
            else:
                text += piece.text
        runs.append(text)
        encoded = self._tokenize(runs, False)
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

