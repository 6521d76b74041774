"""Lightweight fine-tuning of the same classifier: LoRA and adapters through the PEFT library, BitFit.

* ``lora``: PEFT's LoRA (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``; PEFT's defaults for
  the architecture when ``target_modules`` is None, e.g. BERT's ``query``/``value``, Llama's
  ``q_proj``/``v_proj``); any further ``peft.LoraConfig`` field goes in ``options``.
* ``adapter``: another PEFT tuner by its PEFT type name (``method``: ``ia3`` by default — (IA)^3's learned
  rescaling vectors — or ``loha``, ``lokr``, ``oft``, ``vera``, ``ln_tuning``, ...), ``options`` passed to
  its config class.
* ``bitfit`` (Ben Zaken et al., 2022): only bias terms train (plain torch). The biases are kept as
  trainable *offsets* applied to the frozen base model at each forward pass (``torch.func.functional_call``),
  so the base model itself is never changed; ``pattern`` (a regular expression) restricts which biases.

PEFT has no task type for masked LMs, so adapters are injected with ``peft.inject_adapter_in_model`` (no
``PeftModel`` wrapper, no task type): the model object itself gains the adapter layers, under a name of
its own (``promptlearn<N>``), and the base weights stay untouched (PEFT keeps them in ``base_layer``).
Several adapters can live in one model; the active one is switched per forward pass. The saved state is
PEFT's own adapter state dict (``peft.get_peft_model_state_dict``).
"""

from __future__ import annotations

from ..config import register
from .config import AdapterPromptConfig, BitFitConfig, LoraPromptConfig

__all__ = ["AdapterPromptConfig", "BitFitConfig", "LoraPromptConfig"]

register(LoraPromptConfig, "promptlearn.tuning.peft.model:PeftPrompt")
register(AdapterPromptConfig, "promptlearn.tuning.peft.model:PeftPrompt")
register(BitFitConfig, "promptlearn.tuning.peft.model:BitFit")
