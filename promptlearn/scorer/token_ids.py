"""Placeholder token ids: how a row of model input names its continuous prompt and where its soft slots are.

The scorer writes a ``[SOFT]`` slot as a *placeholder id* (a negative number that encodes the prompt's index
in the :class:`~promptlearn.tuning.PromptSet` and the slot's index), and in a batch that mixes prompts it
marks the first token of a row whose prompt has no soft slot with that prompt's index. Negative ids never
collide with a vocabulary id, follow a row through sorting, padding and truncation unchanged, and
:meth:`PromptSet.forward <promptlearn.tuning.PromptSet.forward>` decodes them (:func:`decode_ids`) right
before the model runs. A row without any mark uses the set's first prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_LOW = (1 << 32) - 1


def soft_id(source: int, slot: int) -> int:
    """The placeholder id of soft vector ``slot`` of the set's prompt ``source`` (always negative)."""
    return -(1 + 2 * (slot + (source << 32)))


def tagged_id(source: int, token: int) -> int:
    """Token ``token`` marked as belonging to a row of the set's prompt ``source`` (always negative)."""
    return -(2 + 2 * (token + (source << 32)))


@dataclass
class Decoded:
    """Placeholder ids taken apart: real token ids, where the soft slots are, which prompt each row uses."""

    token_ids: torch.Tensor      # [B, T], soft slots filled with ``filler``
    soft: torch.Tensor           # [B, T] bool: soft slot positions
    sources: torch.Tensor        # [B, T] the prompt index at soft positions (0 elsewhere)
    slots: torch.Tensor          # [B, T] the slot index at soft positions (0 elsewhere)
    row_sources: torch.Tensor    # [B] the prompt each row uses


def decode_ids(ids: torch.Tensor, filler: int = 0) -> Decoded:
    negative = ids < 0
    code = torch.where(negative, -ids - 1, torch.zeros_like(ids))
    marked = negative & (code % 2 == 1)
    soft = negative & ~marked
    # soft: code = 2 * (slot + (source << 32)); marked: code = 1 + 2 * (token + (source << 32))
    rest = torch.where(marked, (code - 1) // 2, code // 2)
    value = rest & _LOW
    source = rest >> 32
    token_ids = torch.where(marked, value, ids)
    token_ids = torch.where(soft, torch.full_like(ids, filler), token_ids)
    row_sources = torch.where(negative, source, torch.full_like(ids, -1)).max(dim=1).values.clamp(min=0)
    return Decoded(token_ids, soft, torch.where(soft, source, 0), torch.where(soft, value, 0), row_sources)
