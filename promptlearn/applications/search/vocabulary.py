"""Which vocabulary tokens may become label words, trigger words or template words.

A *whole word* is a token that a person would write as a word and that tokenizes back to exactly
that one token in the mask's context (after ``anchor + separator``), so ``##ing`` pieces, byte-level
tokens without their leading space (where the context puts one), punctuation, numbers and the
tokenizer's special tokens are left out. Label words also skip a small stop list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

#: Function words that make poor label words (``yes``/``no``/``maybe`` stay: NLI prompts use them).
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself nor not now of off on once
only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves s t re ve ll d m
""".split())

_JINJA_UNSAFE = re.compile(r"[{}%#\[\]\x00-\x08\x0b-\x1f]")


def jinja_safe(text: str) -> bool:
    """Whether ``text`` can go into a template as literal words (no Jinja syntax, no slot brackets)."""
    return not _JINJA_UNSAFE.search(text)


def tidy(text: str) -> str:
    """Join template words the way people write them: no space before closing punctuation or after ``(``."""
    text = re.sub(r"[ \t]+", " ", text).strip(" ")
    text = re.sub(r" ([.,!?;:)])", r"\1", text)
    return re.sub(r"\( ", "(", text)


def decode_tokens(tokenizer: Any, ids: Iterable[int]) -> list[str]:
    """Each token id decoded on its own (``Ġgreat`` -> ``" great"``, ``##ing`` -> ``"##ing"``)."""
    return [tokenizer.decode([int(i)]) for i in ids]


def whole_word_ids(tokenizer: Any, vocab_size: int, anchor: str, separator: str, *,
                   skip_stop_words: bool = True, min_length: int = 2) -> dict[int, str]:
    """Token id -> word, for every token that is an alphabetic whole word in the context ``anchor + separator``.

    Mirrors :meth:`promptlearn.scorer.Scorer.word_ids` (the word's ids are what ``anchor + separator + word``
    adds to ``anchor + separator``), batched over the vocabulary.
    """
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(min(vocab_size, len(tokenizer))) if i not in special]
    words = [w.strip() for w in decode_tokens(tokenizer, ids)]
    keep = [(i, w) for i, w in zip(ids, words)
            if len(w) >= min_length and w.isalpha() and not (skip_stop_words and w.lower() in STOP_WORDS)]
    if not keep:
        return {}
    base = anchor + separator
    base_ids = tokenizer(base, add_special_tokens=False)["input_ids"] if base else []
    full = tokenizer([base + w for _, w in keep], add_special_tokens=False)["input_ids"]
    out: dict[int, str] = {}
    for (token, word), row in zip(keep, full):
        common = 0
        while common < min(len(base_ids), len(row)) and base_ids[common] == row[common]:
            common += 1
        if list(row[common:]) == [token]:
            out.setdefault(token, word)
    return out


def allowed_mask(vocab_size: int, ids: Iterable[int]) -> np.ndarray:
    """A boolean ``[vocab_size]`` array, true at ``ids``."""
    mask = np.zeros(vocab_size, dtype=bool)
    index = [i for i in ids if 0 <= i < vocab_size]
    mask[index] = True
    return mask


def template_token_ids(tokenizer: Any, vocab_size: int, *, allow_newline: bool = False) -> dict[int, str]:
    """Token id -> text for tokens that may be written into a template by infilling.

    Not special, not empty once stripped (a newline counts for causal LMs when ``allow_newline``), and free
    of Jinja syntax and slot brackets.
    """
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(min(vocab_size, len(tokenizer))) if i not in special]
    out = {}
    for token, text in zip(ids, decode_tokens(tokenizer, ids)):
        if "\ufffd" in text or not jinja_safe(text.replace("\n", " ")):
            continue
        if text.strip() or (allow_newline and "\n" in text and not text.strip(" \n")):
            out[token] = text
    return out


def is_continuation(tokenizer: Any, token: int) -> bool:
    """WordPiece continuation pieces (``##ing``), which cannot start a word."""
    return str(tokenizer.convert_ids_to_tokens(int(token))).startswith("##")
