"""Prompt tuning (Lester et al., 2021) and P-tuning (Liu et al., 2021): trainable input embeddings in the
template's ``[SOFT]`` / ``[SOFT:n]`` slots.

* ``soft``: the slots' vectors are the parameters. Initialisation (``init``): ``vocab`` — embeddings of
  random vocabulary tokens (seeded; special tokens excluded), Lester et al.'s sampled-vocabulary init;
  ``label_words`` — the embeddings of the verbalizer's label words (each word's tokens averaged, class
  order, each word once), the rest of the slots as ``vocab``; ``text`` — the embeddings of the tokens of
  ``init_text``, repeated to fill the slots; ``random`` — normal noise at the scale of the embedding
  matrix, the weak choice (Lester et al. found it clearly worse, most of all for smaller models).
* ``ptuning``: the vectors come out of a prompt encoder over trainable inputs, re-computed at every
  forward pass while training: a two-layer bidirectional LSTM followed by a two-layer MLP
  (``encoder="lstm"``, P-tuning's), or a three-layer MLP (``encoder="mlp"``). As in PEFT, what is saved is
  the vectors the encoder produces (``save_encoder=True`` keeps the encoder too).

A soft slot is a token boundary: the text on either side is tokenized on its own. A template without
``[SOFT]`` slots gets ``[SOFT:n_tokens]`` (default 8) in front of it (see
:class:`~promptlearn.PromptClassifier`).
"""

from __future__ import annotations

from ..config import register
from .config import DEFAULT_SOFT_TOKENS, SOFT_INITS, PTuningConfig, SoftPromptConfig

__all__ = ["DEFAULT_SOFT_TOKENS", "PTuningConfig", "SOFT_INITS", "SoftPromptConfig"]

register(SoftPromptConfig, "promptlearn.tuning.soft.model:SoftPrompt")
register(PTuningConfig, "promptlearn.tuning.soft.model:PTuningPrompt")
