"""How an ensemble combines its members' class log-probabilities ``[members, examples, classes]`` (see
:mod:`promptlearn.estimators.ensemble` for the rules and how they relate to PET's)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..core.calibration import log_normalize
from ..core.errors import ConfigError

logger = logging.getLogger(__name__)

COMBINE_RULES = ("mean", "log_mean", "weighted", "vote")


def _weights_or_uniform(weights: Any, n_members: int) -> np.ndarray:
    if weights is None:
        return np.full(n_members, 1.0 / n_members)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_members,) or not np.isfinite(weights).all() or (weights < 0).any():
        raise ConfigError(f"weights must be {n_members} finite non-negative numbers, got {weights.tolist()}")
    if weights.sum() <= 0:
        logger.warning("every member's weight is 0 (no member classified any example correctly); using equal weights")
        return np.full(n_members, 1.0 / n_members)
    return weights / weights.sum()


def _votes(log_probs: np.ndarray) -> np.ndarray:
    """Votes per class ``[N, C]``: each member votes for its most probable class (the first one on a tie)."""
    n_classes = log_probs.shape[2]
    return np.eye(n_classes)[log_probs.argmax(axis=2)].sum(axis=0)


def combine_log_probs(log_probs: Any, combine: str = "mean", weights: Any = None) -> np.ndarray:
    """The ensemble's class log-probabilities ``[N, C]`` from the members' ``[M, N, C]``.

    ``mean``: log of the mean probability; ``log_mean``: the mean log-probability, renormalised; ``weighted``:
    the ``weights``-weighted mean log-probability, renormalised; ``vote``: log of the vote shares (``-inf`` for a
    class nobody voted for). ``weights`` (one per member) are used by ``weighted`` only.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 3 or log_probs.shape[0] == 0:
        raise ConfigError(f"expected member log-probabilities [members, examples, classes], got {log_probs.shape}")
    n_members = log_probs.shape[0]
    if combine == "mean":
        with np.errstate(divide="ignore"):
            return np.log(np.exp(log_probs).mean(axis=0))
    if combine == "log_mean":
        return log_normalize(log_probs.mean(axis=0))
    if combine == "weighted":
        return log_normalize(np.tensordot(_weights_or_uniform(weights, n_members), log_probs, axes=1))
    if combine == "vote":
        with np.errstate(divide="ignore"):
            return np.log(_votes(log_probs) / n_members)
    raise ConfigError(f"combine must be one of {COMBINE_RULES}, got {combine!r}")


def combine_predictions(log_probs: Any, combine: str = "mean", weights: Any = None) -> np.ndarray:
    """The ensemble's predicted class indices ``[N]``: the most probable class of :func:`combine_log_probs`;
    for ``vote`` the most voted class, ties broken by the mean probability over the members (then class order)."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if combine != "vote":
        return combine_log_probs(log_probs, combine, weights).argmax(axis=1)
    votes = _votes(log_probs)
    mean_probs = np.exp(log_probs).mean(axis=0)
    return np.where(votes == votes.max(axis=1, keepdims=True), mean_probs, -np.inf).argmax(axis=1)
