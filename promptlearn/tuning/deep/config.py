"""The config of P-tuning v2 / prefix tuning (torch-free; the method is described in
:mod:`promptlearn.tuning.deep`)."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import ConfigError
from ..config import TuningConfig, cli_option

READOUTS = ("verbalizer", "linear")


@dataclass
class DeepPromptConfig(TuningConfig):
    """P-tuning v2: ``prefix_length`` keys/values per layer; ``init`` (``vocab`` or ``random`` with
    ``init_std``); ``reparameterize`` (prefix tuning's MLP, ``hidden_size`` wide); ``readout``
    (``verbalizer`` or ``linear``)."""

    source = "deep"
    learning_rate: float = 1e-2
    prefix_length: int = cli_option(8, "--prefix-length", "keys/values per layer (default 8)", metavar="N")
    init: str = cli_option("vocab", "--prefix-init", "the model's own keys/values of random tokens (default) or "
                           "normal noise", choices=("vocab", "random"))
    init_std: float = 1.0
    reparameterize: bool = cli_option(False, "--prefix-projection", "prefix tuning's MLP reparameterisation")
    hidden_size: int = cli_option(512, "--encoder-hidden", "the MLP's width with --prefix-projection (default 512)",
                                  metavar="N")
    readout: str = cli_option("verbalizer", "--readout", "class scores from the label words at the mask (default) "
                              "or a linear head on the mask's hidden state (P-tuning v2's)", choices=READOUTS)

    def validate(self) -> None:
        if isinstance(self.prefix_length, bool) or int(self.prefix_length) < 1:
            raise ConfigError(f"prefix_length must be >= 1, got {self.prefix_length!r}")
        if self.init not in ("vocab", "random"):
            raise ConfigError(f"init must be 'vocab' or 'random', got {self.init!r}")
        if not float(self.init_std) > 0:
            raise ConfigError(f"init_std must be > 0, got {self.init_std!r}")
        if int(self.hidden_size) < 1:
            raise ConfigError(f"hidden_size must be >= 1, got {self.hidden_size!r}")
        if self.readout not in READOUTS:
            raise ConfigError(f"readout must be one of {READOUTS}, got {self.readout!r}")
