"""Guards between user input and the model: special-token strings in example text are broken so they stay text,
and label words of different classes that the tokenizer cannot tell apart are refused.

Both are computed once (per tokenizer, per verbalizer and mask context) and cached on the scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.encoding import BREAK, special_ids, special_strings, special_token_breaker
from ..core.errors import VerbalizerError

__all__ = ["BREAK", "check_distinct_label_words", "special_ids", "special_strings", "special_token_breaker"]


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
