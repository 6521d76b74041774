"""Contextual calibration (Zhao et al., 2021): divide out the prompt's bias measured on content-free inputs.

The model's class probabilities on inputs that say nothing (``N/A``, the empty string, ``[MASK]``)
estimate its prior for the prompt; calibrated scores are ``log p(y|x) - log p_cf(y)``, renormalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .errors import ConfigError

CONTENT_FREE = ("N/A", "", "[MASK]")


def content_free_inputs(tokens: str | Sequence[str]) -> tuple[str, ...]:
    """The content-free inputs as a tuple of strings: one string is one input (never split into characters);
    an empty sequence, or anything but strings, is refused (the prior would be NaN)."""
    if isinstance(tokens, str):
        return (tokens,)
    if isinstance(tokens, (bytes, dict)) or not isinstance(tokens, Iterable):
        raise ConfigError(f"content_free must be a list of strings such as {list(CONTENT_FREE)}, "
                          f"got {type(tokens).__name__}")
    tokens = tuple(tokens)
    if not tokens:
        raise ConfigError(f"content_free is empty, so calibration has no prior to divide out; give at least one "
                          f"content-free input, e.g. content_free={list(CONTENT_FREE)} (the default)")
    bad = [t for t in tokens if not isinstance(t, str)]
    if bad:
        raise ConfigError(f"content_free must hold strings only, got {bad[0]!r} ({type(bad[0]).__name__}); "
                          f"e.g. content_free={list(CONTENT_FREE)}")
    return tokens


def log_normalize(scores: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis (class log-scores -> class log-probabilities)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def content_free_examples(fields: Iterable[str], tokens: Sequence[str] = CONTENT_FREE) -> list[dict[str, str]]:
    """One example per content-free token, with every template field set to it (see :func:`content_free_inputs`)."""
    names = sorted(fields)
    return [{name: token for name in names} for token in content_free_inputs(tokens)]


def content_free_prior(content_free_log_probs: np.ndarray) -> np.ndarray:
    """The prompt's class prior: the mean class probability over the content-free inputs, renormalised."""
    probs = np.exp(log_normalize(content_free_log_probs)).mean(axis=0)
    return probs / probs.sum()


def contextual_calibration(log_probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Calibrated class log-probabilities: ``log p - log prior``, renormalised over classes."""
    return log_normalize(np.asarray(log_probs, dtype=np.float64) - np.log(np.asarray(prior, dtype=np.float64)))
