"""Rows of model input as text: a rendered prompt as pieces of text, tokenized with mask-safe truncation (only the
example's fields are shortened, in-context demonstrations give way first), and the guard that keeps special-token
strings in example text plain text. Torch-free: the scorers (:mod:`promptlearn.scorer.encoding` adds soft slots)
and the ONNX runtime (:mod:`promptlearn.onnx.runtime`) encode rows with the same code."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DemonstrationTooLongError, TemplateError, TruncationError
from .template import Prompt, Segment

#: Inserted after the first character of a special-token string found in example text: the tokenizer no longer
#: matches the token, and most normalizers drop the character (BERT's) or encode it as a few byte tokens.
BREAK = "\u200b"


def special_strings(tokenizer: Any) -> list[str]:
    """Every special-token string of the tokenizer: its named special tokens and its added special tokens."""
    strings = {str(t) for t in (getattr(tokenizer, "all_special_tokens", None) or [])}
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    strings.update(str(getattr(t, "content", t)) for t in decoder.values() if getattr(t, "special", False))
    return sorted((s for s in strings if len(s) > 1), key=lambda s: (-len(s), s))


def special_ids(tokenizer: Any) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", None) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(int(i) for i, t in decoder.items() if getattr(t, "special", False))
    return ids


def special_token_breaker(tokenizer: Any) -> Callable[[str], str]:
    """A function that rewrites every special-token string in a text so the tokenizer reads it as plain text
    (``<|im_start|>`` -> ``<`` + zero-width space + ``|im_start|>``). Where the tokenizer still finds a special
    token in that form (a normalizer that drops the zero-width space before matching), a plain space is used;
    where even that fails, the string is removed."""
    strings = special_strings(tokenizer)
    if not strings:
        return lambda text: text
    ids = special_ids(tokenizer)

    def leaks(texts: list[str]) -> list[bool]:
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [any(i in ids for i in row) for row in encoded]

    replacement = {s: s[0] + BREAK + s[1:] for s in strings}
    for fallback in (lambda s: s[0] + " " + s[1:], lambda s: " "):
        bad = [s for s, leaked in zip(strings, leaks([replacement[s] for s in strings])) if leaked]
        if not bad:
            break
        replacement.update({s: fallback(s) for s in bad})
    pattern = re.compile("|".join(re.escape(s) for s in strings))
    first = frozenset(s[0] for s in strings)

    def clean(text: str) -> str:
        if first.isdisjoint(text):  # most texts: no character that starts a special token
            return text
        return pattern.sub(lambda m: replacement[m.group(0)], text)

    return clean


@dataclass(frozen=True)
class Piece:
    """A piece of model input text; ``shortenable`` pieces may be cut from the end to fit the window.

    ``demo``: the pool index of the in-context demonstration the piece belongs to (None: the example's own).
    ``soft``: a soft slot of that many vectors (``text`` is empty), starting at vector ``slot`` of the prompt;
    ``source``: the prompt (index in the scorer's :class:`~promptlearn.tuning.PromptSet`) the row uses.
    """

    text: str
    shortenable: bool = False
    demo: int | None = None
    soft: int = 0
    slot: int = 0
    source: int = 0


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


class TextEncoding:
    """Tokenisation with truncation: prompt segments -> pieces -> token ids within a budget.

    A base of :class:`~promptlearn.scorer.encoding.RowEncoding` (the scorers) and of the ONNX runtime's
    encoder, which set what these methods read: ``tokenizer`` (called as a Hugging Face tokenizer),
    ``max_length``, ``prompt_source`` (soft slots need one), ``_offsets`` (the tokenizer gives character
    offsets) and ``_backend`` (the Rust tokenizer to call directly, or None).
    """

    def _pieces(self, segments: Sequence[Segment], prompt: Prompt) -> list[Piece]:
        pieces = []
        source = _source_of(prompt)
        for segment in segments:
            if segment.kind == "soft":
                if self.prompt_source is None:
                    raise TemplateError("the template has [SOFT] slots; they need a soft-prompt source "
                                        "(tuning='soft' or 'ptuning'), not a manual one")
                pieces.append(Piece("", False, segment.demo, segment.n_soft, _soft_offset(prompt, segment), source))
                continue
            if segment.kind == "mask":
                raise AssertionError("mask segments are placed by the scorer")
            text = segment.text
            if segment.kind == "field":
                text = self._clean_field(text)
            pieces.append(Piece(text, prompt.is_shortenable(segment), segment.demo, source=source))
        return pieces

    def _clean_field(self, text: str) -> str:
        """Example text as the model may read it: special-token strings (``[SEP]``, ``<|im_start|>``, ...) are
        broken so they stay plain text and cannot act as control tokens (:mod:`.guards`)."""
        breaker = self.__dict__.get("_special_breaker")
        if breaker is None:  # built once per scorer (racing threads build the same function)
            breaker = self._special_breaker = special_token_breaker(self.tokenizer)
        return breaker(text)

    def _encode_texts(self, texts: Sequence[str], pieces: Any, budgets: Sequence[int], add_special_tokens: bool,
                      describe: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (one batched call); a row over its budget is shortened from ``pieces(i)``, the
        row's pieces (made only for such rows)."""
        out = self._tokenize(texts, add_special_tokens)
        for i, ids in enumerate(out):
            if len(ids) > budgets[i]:
                out[i] = self._truncate(pieces(i), budgets[i], add_special_tokens, describe[i])
        return out

    def _truncate(self, pieces: list[Piece], budget: int, add_special_tokens: bool, describe: str,
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
                new_pieces.append(Piece(piece.text[:max(0, min(cut, len(piece.text) - 1))], True, piece.demo,
                                         source=piece.source))
            pieces = new_pieces
        raise TruncationError(f"{describe}: could not fit the prompt into {budget} tokens")

    def _tokenize(self, texts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
        """Token ids of each text, one batched call (the Rust tokenizer directly when it gives the same ids)."""
        backend = self._backend
        if backend is not None and backend.truncation is None and backend.padding is None:
            return [encoding.ids for encoding in _encode_batch(backend, list(texts), add_special_tokens)]
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=add_special_tokens,
                                                    verbose=False)["input_ids"]]



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


def word_token_ids(tokenizer: Any, word: str, anchor: str, separator: str) -> tuple[int, ...]:
    """Token ids of ``word`` as it reads after ``anchor + separator`` (leading-space conventions): the ids of
    the joined text past those of the anchor alone; empty when the word tokenizes to nothing."""
    base = anchor + separator
    base_ids = tokenizer(base, add_special_tokens=False)["input_ids"] if base else []
    full_ids = tokenizer(base + word, add_special_tokens=False)["input_ids"]
    common = 0
    while common < min(len(base_ids), len(full_ids)) and base_ids[common] == full_ids[common]:
        common += 1
    return tuple(full_ids[common:])


def _checked_backend(tokenizer: Any) -> Any:
    """The fast tokenizer's Rust backend when calling it directly gives the ids the tokenizer gives (checked
    on a few probe texts, special tokens included), else None (the tokenizer is called as usual)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is None or not hasattr(backend, "encode_batch"):
        return None
    specials = " ".join(t for t in (tokenizer.mask_token, tokenizer.sep_token, tokenizer.eos_token) if t)
    probes = ["Hello world.", f"It was {specials} great!", "  two  spaces, naïve café 123", ""]
    try:
        for add in (True, False):
            expected = [list(ids) for ids in tokenizer(probes, add_special_tokens=add, verbose=False)["input_ids"]]
            if [e.ids for e in _encode_batch(backend, probes, add)] != expected:
                return None
    except Exception:  # any tokenizer that does not behave like a plain fast tokenizer
        return None
    return backend


def _encode_batch(backend: Any, texts: list[str], add_special_tokens: bool) -> list[Any]:
    fast = getattr(backend, "encode_batch_fast", None)  # tokenizers >= 0.21: no offsets computed
    return (fast or backend.encode_batch)(texts, add_special_tokens=add_special_tokens)
