"""The position-only LM head: the vocabulary projection applied only where a score is read (the mask or
last positions), by hooking the model's head module."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from ..models import compat
from ..core.errors import ConfigError

logger = logging.getLogger(__name__)


class _Captured(Exception):
    """Stops a forward pass once the head's input is captured (:meth:`_PositionHead.features`)."""


class _Relay:
    """The hook object on the model: calls its head's hook. A copied or pickled model gets a pass-through relay
    (the copy is not scored through this head), so the model stays copyable and picklable."""

    def __init__(self, head: Any) -> None:
        self.head = head

    def __call__(self, module: Any, args: tuple) -> tuple | None:
        return self.head._hook(module, args) if self.head is not None else None

    def __reduce__(self) -> tuple:
        return (_Relay, (None,))


class _PositionHead:
    """Runs a model but applies its vocabulary projection only at chosen positions.

    A forward pre-hook on the LM head swaps the hidden states ``[B, T, H]`` for the rows at the wanted
    positions, which is where almost all of a small LM's head compute goes. The hook sits on the whole
    head when it is a module of its own (BERT's ``cls``: its dense + LayerNorm transform is skipped too),
    else on the output embeddings. The shortcut is checked once against full logits, each place in turn (within
    the model's precision: half-precision logits differ in their last bits between batch shapes); a model where
    it holds nowhere falls back to full logits.

    Thread-safe: the hook is registered once and reads the positions of the calling thread (a thread-local), so
    several threads may score with one model at the same time; the check runs once, under a lock.
    """

    def __init__(self, model: Any, forward: Any = None) -> None:
        self.model = model
        self.forward = forward or model  # the scorer's forward: injects continuous prompts when it has any
        self.head = model.get_output_embeddings()
        self.enabled: bool | None = None if self.head is not None else False
        self._hooked: Any = None  # the module the hook goes on, once checked
        self._local = threading.local()  # per thread: the (rows, cols) to keep, or a list capturing features
        self._lock = threading.RLock()  # the check installs hooks while holding it
        self._handles: dict[int, Any] = {}  # id(module) -> the permanent hook's handle

    def _places(self) -> list[Any]:
        """Where the hook may go: the model's child that holds the output embeddings (the whole head, when
        that child is not the backbone), then the output embeddings themselves."""
        places = [child for child in self.model.children()
                  if any(m is self.head for m in child.modules()) and child is not self.head
                  and child is not getattr(self.model, "base_model", None)]
        return places[:1] + [self.head]

    def _hook(self, module: Any, args: tuple) -> tuple | None:
        state = getattr(self._local, "state", None)
        if state is None or state[0] is not module:  # another thread's call, or not scoring: pass through
            return None
        _, action, rows, cols = state
        hidden = args[0]
        if action == "capture":
            rows.append(hidden[cols[0], cols[1]] if hidden.dim() == 3 else hidden)
            raise _Captured
        return (hidden[rows, cols].unsqueeze(0),) + tuple(args[1:])

    def _install(self, module: Any) -> None:
        """Put the (pass-through unless this thread asks) hook on ``module``, once."""
        if id(module) not in self._handles:
            with self._lock:
                if id(module) not in self._handles:
                    self._handles[id(module)] = module.register_forward_pre_hook(_Relay(self))

    @contextmanager
    def _active(self, module: Any, action: str, rows: Any, cols: Any) -> Iterator[None]:
        self._install(module)
        previous = getattr(self._local, "state", None)
        self._local.state = (module, action, rows, cols)
        try:
            yield
        finally:
            self._local.state = previous

    def _selecting(self, rows: torch.Tensor, cols: torch.Tensor, place: Any = None) -> Any:
        return self._active(place if place is not None else self._hooked, "select", rows, cols)

    def logits(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Logits ``[len(rows), V]`` at ``(rows, cols)``, and the model output (for its cache)."""
        if self.enabled is None:
            with self._lock:
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
        try:
            with self._active(self.head, "capture", captured, (rows, cols)):
                self.forward(**inputs)
        except _Captured:
            pass
        if not captured:
            raise ConfigError("the model never applied its output head; a linear readout cannot read its features")
        return captured[0]

    def _check(self, inputs: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor) -> bool:
        probe = {k: (v[:1] if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()
                 if k not in compat.CACHE_NAMES and k != "use_cache"}
        keep = rows == 0
        was_training = self.model.training
        # fp32: 1e-4; half precision: a few units in the last place of the logits' dtype (bf16 eps 7.8e-3)
        dtype = next(self.model.parameters()).dtype
        tolerance = max(1e-4, 8 * torch.finfo(dtype).eps) if dtype.is_floating_point else 1e-4
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
                    if part.shape == full.shape and torch.allclose(part.float(), full.float(), atol=tolerance,
                                                                   rtol=tolerance):
                        self._hooked = place
                        break
        finally:
            self.model.train(was_training)
        ok = self._hooked is not None
        if not ok:
            logger.info("this model's head cannot be applied at the mask positions only; using full logits")
        return ok
