"""Training a half-precision model the standard way (Hugging Face / PyTorch AMP practice).

A model loaded in bfloat16 trains with its trainable parameters -- and so the optimizer state -- in float32, the
forward under ``torch.autocast`` in bfloat16 and the loss in float32; the parameters go back to the model's dtype
when training ends. float16 training would need loss scaling and is refused. Nothing changes for float32.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..core.errors import ConfigError


class MixedPrecision:
    """``with MixedPrecision(module) as precision: ... with precision.autocast(): loss = ...``"""

    def __init__(self, module: Any) -> None:
        import torch

        first = next(module.parameters())
        self.module = module
        self.dtype = first.dtype
        if self.dtype == torch.float16:
            raise ConfigError("training in float16 needs loss scaling, which promptlearn does not do: train with "
                              "dtype='bfloat16' (--dtype bfloat16) or 'float32', then score in float16 if you like")
        self.half = self.dtype == torch.bfloat16
        self.device_type = first.device.type

    def autocast(self) -> Any:
        """The forward's context: autocast to the model's dtype for a half-precision model, else nothing."""
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype) if self.half else contextlib.nullcontext()

    def _cast(self, dtype: Any) -> None:
        for parameter in self.module.parameters():
            if parameter.requires_grad and parameter.is_floating_point():
                parameter.data = parameter.data.to(dtype)

    def __enter__(self) -> MixedPrecision:
        import torch

        if self.half:
            self._cast(torch.float32)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.half:
            self._cast(self.dtype)
