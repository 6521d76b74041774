"""The manual prompt's module (see :mod:`promptlearn.tuning.manual`)."""

from __future__ import annotations

from ..base import PromptModule


class ManualPrompt(PromptModule):
    """A manual prompt's place in a :class:`~promptlearn.tuning.PromptSet` (a :class:`~promptlearn.PromptBank`
    member without parameters): nothing is injected."""

    source = "manual"
