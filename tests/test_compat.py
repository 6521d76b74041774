"""promptlearn.models.compat: the one place that knows how transformers releases differ (see its docstring)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import torch

from promptlearn.models import compat

PACKAGE = Path(compat.__file__).resolve().parent


def test_cache_name_is_the_keyword_the_installed_models_take(tiny_llama_dir, tiny_bert_dir):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    for model in (AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                  AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)):
        base = model.base_model
        assert compat.CACHE_NAME in inspect.signature(type(base).forward).parameters, type(base).__name__


def test_a_cache_goes_in_and_comes_out_under_the_detected_name(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        full = model(input_ids=ids).logits
        first = model(input_ids=ids[:, :3], use_cache=True)
        cache = compat.output_cache(first)
        assert isinstance(cache, compat.DynamicCache)
        layers = compat.cache_layers(cache)
        assert len(layers) == model.config.num_hidden_layers and layers[0][0].shape[-2] == 3
        # rebuilt from its keys and values, the cache continues the sequence exactly as the model's own does
        rebuilt = compat.dynamic_cache([(k.clone(), v.clone()) for k, v in layers], model.config)
        step = model(input_ids=ids[:, 3:], **compat.cache_kwarg(rebuilt)).logits
    torch.testing.assert_close(step[:, -1], full[:, -1], atol=1e-5, rtol=1e-5)
    assert compat.input_cache(compat.with_cache({}, rebuilt)) is rebuilt


def test_state_dict_name_maps_legacy_layernorm_names():
    assert compat.state_dict_name("bert.embeddings.LayerNorm.gamma") == "bert.embeddings.LayerNorm.weight"
    assert compat.state_dict_name("bert.embeddings.LayerNorm.beta") == "bert.embeddings.LayerNorm.bias"
    assert compat.state_dict_name("bert.embeddings.word_embeddings.weight") == "bert.embeddings.word_embeddings.weight"


def test_no_other_module_names_the_cache_or_tests_the_transformers_version():
    pattern = re.compile(r"past_key_values|[\"']cache[\"']|\bcache=|\w\.cache\b|transformers\.__version__|"
                         r"ddp_cache_data|\.layers\b.*\.keys\b")
    offenders = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "compat.py"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders, "version differences belong in promptlearn/models/compat.py:\n" + "\n".join(offenders)
