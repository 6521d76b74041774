"""The position-only LM head: the vocabulary projection applied only where a score is read (the mask or
last positions), by hooking the model's head module."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from ..errors import ConfigError

logger = logging.getLogger(__name__)


class _Captured(Exception):
    """Stops a forward pass once the head's input is captured (:meth:`_PositionHead.features`)."""


class _PositionHead:
    """Runs a model but applies its vocabulary projection only at chosen positions.

    A forward pre-hook on the LM head swaps the hidden states ``[B, T, H]`` for the rows at the wanted
    positions, which is where almost all of a small LM's head compute goes. The hook sits on the whole
    head when it is a module of its own (BERT's ``cls``: its dense + LayerNorm transform is skipped too),
    else on the output embeddings. The shortcut is checked once against full logits, each place in turn;
    a model where it holds nowhere falls back to full logits.
    """

    def __init__(self, model: Any, forward: Any = None) -> None:
        self.model = model
        self.forward = forward or model  # the scorer's forward: injects continuous prompts when it has any
        self.head = model.get_output_embeddings()
        self.enabled: bool | None = None if self.head is not None else False
        self._hooked: Any = None  # the module the hook goes on, once checked
        self._index: tuple[torch.Tensor, torch.Tensor] | None = None

    def _places(self) -> list[Any]:
        """Where the hook may go: the model's child that holds the output embeddings (the whole head, when
        that child is not the backbone), then the output embeddings themselves."""
        places = [child for child in self.model.children()
                  if any(m is self.head for m in child.modules()) and child is not self.head
                  and child is not getattr(self.model, "base_model", None)]
        return places[:1] + [self.head]

    def _hook(self, module: Any, args: tuple) -> tuple:
        rows, cols = self._index  # type: ignore[misc]
        return (args[0][rows, cols].unsqueeze(0),) + tuple(args[1:])

    @contextmanager
    def _selecting(self, rows: torch.Tensor, cols: torch.Tensor, place: Any = None) -> Iterator[None]:
        self._index = (rows, cols)
        handle = (place if place is not None else self._hooked).register_forward_pre_hook(self._hook)
        try:
            yield
        finally:
            handle.remove()
            self._index = None

    def logits(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Logits ``[len(rows), V]`` at ``(rows, cols)``, and the model output (for its cache)."""
        if self.enabled is None:
            self.enabled = self._check(inputs, rows, cols)
        if self.enabled:
            with self._selecting(rows, cols):
                output = self.forward(**inputs)
            return output.logits.reshape(len(rows), -1), output
        output = self.forward(**inputs)
        return output.logits[rows, cols], output

    def features(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The hidden states ``[len(rows), H]`` the vocabulary projection reads at ``(rows, cols)``; the
        projection itself is skipped (a linear readout replaces it)."""
        captured: list[torch.Tensor] = []

        def hook(module: Any, args: tuple) -> None:
            hidden = args[0]
            captured.append(hidden[rows, cols] if hidden.dim() == 3 else hidden)
            raise _Captured

        handle = self.head.register_forward_pre_hook(hook)
        try:
            self.forward(**inputs)
        except _Captured:
            pass
        finally:
            handle.remove()
        if not captured:
            raise ConfigError("the model never applied its output head; a linear readout cannot read its features")
        return captured[0]

    def _check(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> bool:
        probe = {k: (v[:1] if isinstance(v, torch.Tensor) and k != "cache" else v) for k, v in inputs.items()
                 if k not in ("cache", "use_cache")}
        keep = rows == 0
        was_training = self.model.training
        # Checked in eval mode, without gradients and without touching the RNG that training reseeds.
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            self.model.eval()
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                full = self.forward(**probe).logits[0, cols[keep]]
                for place in self._places():
                    try:
                        with self._selecting(rows[keep], cols[keep], place):
                            part = self.forward(**probe).logits.reshape(int(keep.sum()), -1)
                    except Exception as exc:  # a head that cannot take the shortcut here
                        logger.debug("position-only head not at %s: %s", type(place).__name__, exc)
                        continue
                    if part.shape == full.shape and torch.allclose(part, full, atol=1e-4, rtol=1e-4):
                        self._hooked = place
                        break
        finally:
            self.model.train(was_training)
        ok = self._hooked is not None
        if not ok:
            logger.info("this model's head cannot be applied at the mask positions only; using full logits")
        return ok
