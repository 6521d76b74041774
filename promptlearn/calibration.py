"""Contextual calibration (Zhao et al., 2021): divide out the prompt's bias measured on content-free inputs.

The model's class probabilities on inputs that say nothing (``N/A``, the empty string, ``[MASK]``)
estimate its prior for the prompt; calibrated scores are ``log p(y|x) - log p_cf(y)``, renormalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

CONTENT_FREE = ("N/A", "", "[MASK]")


def log_normalize(scores: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis (class log-scores -> class log-probabilities)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def content_free_examples(fields: Iterable[str], tokens: Sequence[str] = CONTENT_FREE) -> list[dict[str, str]]:
    """One example per content-free token, with every template field set to it."""
    names = sorted(fields)
    return [{name: token for name in names} for token in tokens]


def content_free_prior(content_free_log_probs: np.ndarray) -> np.ndarray:
    """The prompt's class prior: the mean class probability over the content-free inputs, renormalised."""
    probs = np.exp(log_normalize(content_free_log_probs)).mean(axis=0)
    return probs / probs.sum()


def contextual_calibration(log_probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Calibrated class log-probabilities: ``log p - log prior``, renormalised over classes."""
    return log_normalize(np.asarray(log_probs, dtype=np.float64) - np.log(np.asarray(prior, dtype=np.float64)))
