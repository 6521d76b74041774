"""Guards between user input and the model: special-token strings in example text are broken so they stay text,
and label words of different classes that the tokenizer cannot tell apart are refused.

Both are computed once (per tokenizer, per verbalizer and mask context) and cached on the scorer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import VerbalizerError

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


def check_distinct_label_words(scorer: Any, prompts: Sequence[Any], verbalizer: Any) -> None:
    """Refuse label words of different classes that tokenize to the same ids after the prompts' mask context
    (e.g. two words that are both ``[UNK]``): such classes always tie, and one of them can never win.
    Checked once per verbalizer and mask context (cached on the scorer)."""
    checked = scorer.__dict__.setdefault("_distinct_words_checked", set())
    words = tuple(verbalizer.words)
    for anchor, separator in {scorer.mask_context(p) for p in prompts}:
        key = (words, anchor, separator)
        if key in checked:
            continue
        owner: dict[tuple[int, ...], tuple[str, str]] = {}
        for label, class_words in zip(verbalizer.classes, verbalizer.words):
            for word in class_words:
                ids = tuple(scorer.word_ids(word, anchor, separator))
                if ids in owner and owner[ids][0] != label:
                    other_label, other_word = owner[ids]
                    tokens = scorer.tokenizer.convert_ids_to_tokens(list(ids))
                    raise VerbalizerError(
                        f"label words {other_word!r} (class {other_label!r}) and {word!r} (class {label!r}) are the "
                        f"same tokens {tokens} for this model's tokenizer, so the two classes cannot be told apart; "
                        f"choose label words the tokenizer knows (not unknown-token words)")
                owner.setdefault(ids, (label, word))
        checked.add(key)
