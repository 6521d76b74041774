"""The manual prompt: the template as written, with no parameters of its own.

Nothing is injected into the forward pass; training (``fit``) trains the model's own weights (PET /
LM-BFF prompt-based fine-tuning), as chosen by ``trainable``. A template with ``[SOFT]`` slots is
refused: soft slots need the ``soft`` or ``ptuning`` source.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import PromptModule, SourceConfig


@dataclass
class ManualConfig(SourceConfig):
    """No options: the manual prompt has no parameters."""

    source = "manual"


class ManualPrompt(PromptModule):
    """A manual prompt's place in a :class:`~promptlearn.tuning.PromptSet` (a :class:`~promptlearn.PromptBank`
    member without parameters): nothing is injected."""

    source = "manual"
