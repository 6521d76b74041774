"""The manual prompt: the template as written, with no parameters of its own.

Nothing is injected into the forward pass; training (``fit``) trains the model's own weights (PET /
LM-BFF prompt-based fine-tuning), as chosen by ``trainable``. A template with ``[SOFT]`` slots is
refused: soft slots need the ``soft`` or ``ptuning`` source.
"""

from __future__ import annotations

from ..config import register
from .config import ManualConfig

__all__ = ["ManualConfig"]

# The manual prompt builds no module (``fit`` trains the model's own weights); its place in a PromptSet is
# :class:`.model.ManualPrompt`.
register(ManualConfig, None)
