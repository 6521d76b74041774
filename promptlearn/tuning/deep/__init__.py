"""P-tuning v2 (Liu et al., 2022) / prefix tuning (Li & Liang, 2021): trainable key/value prefixes at
every layer.

Each layer's self-attention sees ``prefix_length`` extra keys and values before the input's own; the
input tokens keep their usual positions (the prefix has none), so the prefix takes no room in the
model's window. The prefixes enter through the model's key/value cache (see
:mod:`promptlearn.tuning.base`), the same way for masked LMs (BERT, RoBERTa) and causal LMs.

* ``init="vocab"`` (default) starts the prefixes at the keys and values the model itself computes
  for ``prefix_length`` random vocabulary tokens (Li & Liang's initialisation by real activations);
  ``init="random"`` draws them from a normal distribution with standard deviation ``init_std`` (P-tuning
  v2's plain embedding init uses 1.0).
* ``reparameterize=True``: prefix tuning's MLP reparameterisation — trainable ``[prefix_length,
  embedding_dim]`` inputs (started at random vocabulary embeddings) through ``Linear -> tanh ->
  Linear`` (``hidden_size`` wide) give every layer's keys and values. More parameters to train, all saved.
* ``readout="verbalizer"`` (default) reads the class scores from the label words at the mask, as every
  other prompt does; ``readout="linear"`` is P-tuning v2's own: a new linear head (trained with the
  prefixes) on the hidden state the LM head reads at the mask (causal LMs: at the position that would
  predict the label word), so label words play no part beyond naming the classes.
"""

from __future__ import annotations

from ..config import register
from .config import READOUTS, DeepPromptConfig

__all__ = ["DeepPromptConfig", "READOUTS"]

register(DeepPromptConfig, "promptlearn.tuning.deep.model:DeepPrompt")
