"""Continuous prompts and lightweight fine-tuning (promptlearn.tuning, PromptBank) on the tiny local models.

What the random tiny models can and cannot show: their attention is almost uniform and their output at
the mask hardly depends on the context, so what a prompt that only adds inputs can learn there is the
class prior. The "learns" tests therefore use a task where the prior is what there is to learn (6 of 8
training examples negative; the untrained prompt gets at most half right) for soft, P-tuning, deep,
adapter and BitFit prompts, and a balanced sentiment task for LoRA, which can change the attention
itself. On the tiny BERT a soft prompt moves the class scores by about 0.02 at most (its vectors go
through the embedding LayerNorm), so soft prompts are trained on the tiny Llama.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from promptlearn import ConfigError, PromptBank, PromptClassifier, SoftPromptConfig, Template, TemplateError
from promptlearn.models import compat
from promptlearn.cli import main
from promptlearn.estimators.options import DemonstrationOptions, ScoringOptions, TrainingOptions
from promptlearn.tuning import (AdapterPromptConfig, BuildContext, DeepPromptConfig, PromptSet, build_prompt,
                                tuning_config)
from promptlearn.scorer.token_ids import decode_ids, soft_id, tagged_id

TEMPLATE = "{{ text }} It was [MASK]."
VERBALIZER = {"neg": ["bad"], "pos": ["great"]}
POS = ["a great movie", "good fun", "great acting and a good story", "i loved it , great", "good music",
       "the best film , great"]
NEG = ["a bad movie", "awful plot", "bad acting and a poor story", "i hated it , bad", "boring and bad",
       "the worst film , awful"]
PRIOR_X, PRIOR_Y = POS[:2] + NEG, ["pos"] * 2 + ["neg"] * 6          # the prior is what there is to learn
BALANCED_X, BALANCED_Y = POS + NEG, ["pos"] * 6 + ["neg"] * 6


def make(path, tuning="manual", template=TEMPLATE, **params) -> PromptClassifier:
    params.setdefault("show_progress", False)
    return PromptClassifier(str(path), template, VERBALIZER, tuning=tuning, **params)


def cross_entropy(clf: PromptClassifier, X, y) -> float:
    log_probs = clf.predict_log_proba(X)
    return float(-np.mean([log_probs[i, list(clf.classes_).index(label)] for i, label in enumerate(y)]))


def base_weights(model) -> dict[str, torch.Tensor]:
    """The base model's own weights under their original names (PEFT moves a wrapped layer's into base_layer)."""
    out = {}
    for name, tensor in model.state_dict().items():
        parts = name.split(".")
        if any(p.startswith("promptlearn") for p in parts):  # an adapter's weights
            continue
        out[".".join(p for p in parts if p != "base_layer")] = tensor.detach().clone()
    return out


# -- placeholder ids and soft slots -------------------------------------------------------------------
def test_placeholder_ids_decode():
    ids = torch.tensor([[2, soft_id(0, 0), soft_id(0, 1), 7, 0], [tagged_id(3, 9), 5, soft_id(3, 2), 1, 1],
                        [4, 5, 6, 7, 8]])
    decoded = decode_ids(ids, filler=0)
    assert decoded.token_ids.tolist() == [[2, 0, 0, 7, 0], [9, 5, 0, 1, 1], [4, 5, 6, 7, 8]]
    assert decoded.soft.tolist() == [[False, True, True, False, False], [False, False, True, False, False],
                                     [False] * 5]
    assert decoded.slots[decoded.soft].tolist() == [0, 1, 2]
    assert decoded.sources[decoded.soft].tolist() == [0, 0, 3]
    assert decoded.row_sources.tolist() == [0, 3, 0]


def test_manual_prompt_refuses_soft_slots(tiny_bert_dir):
    with pytest.raises(TemplateError, match="tuning='soft'"):
        make(tiny_bert_dir, template="[SOFT] {{ text }} [MASK].").predict_proba(["x"])


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_soft_slots_are_token_boundaries_and_survive_truncation(fixture, request):
    clf = make(request.getfixturevalue(fixture), "soft", template="[SOFT:3] {{ text }} It [SOFT] was [MASK].",
               scoring=ScoringOptions(max_length=16))
    scorer, tokenizer = clf.scorer_, clf.model_.tokenizer
    short, long = "a good movie", " ".join(["the plot is a mess and the acting is worse"] * 6)
    prompts = [clf.template_.render({"text": t}) for t in (short, long)]
    if clf.model_.kind == "masked":
        rows = scorer._rows(prompts, [(0, 1), (1, 1)])
    else:
        rows = scorer._encode([scorer._prefix_pieces(p) for p in prompts], [16, 16], True, ["0", "1"])
    for row in rows:
        assert len(row) <= 16
        assert [t for t in row if t < 0] == [soft_id(0, j) for j in range(4)]  # every slot, in order, never cut
    # The text around a slot is tokenized on its own: " It" after the example, " was" after the 4th vector.
    row = rows[0]
    start = row.index(soft_id(0, 3))
    expected = tokenizer(" was", add_special_tokens=False)["input_ids"]
    assert row[start + 1:start + 1 + len(expected)] == expected
    text = tokenizer.decode([t for t in rows[1] if t >= 0])
    assert "plot" in text and len(rows[1]) == 16  # the long field was shortened, not the slots
    assert np.isfinite(clf.predict_proba([short, long])).all()


def test_soft_prompt_prepended_to_template_without_slots(tiny_bert_dir):
    clf = make(tiny_bert_dir, SoftPromptConfig(n_tokens=5))
    assert clf.template_.source.startswith("[SOFT:5] ")
    assert clf.prompt_.n_soft == 5 and tuple(clf.prompt_.embedding.shape) == (5, 32)
    with pytest.raises(ConfigError, match="n_tokens=2"):
        make(tiny_bert_dir, SoftPromptConfig(n_tokens=2), template="[SOFT:3] {{ text }} [MASK].").prompt_


def test_soft_init_modes(tiny_bert_dir):
    clf = make(tiny_bert_dir, SoftPromptConfig(init="label_words"), template="[SOFT:3] {{ text }} [MASK].")
    model, tokenizer = clf.model_.model, clf.model_.tokenizer
    embed = model.get_input_embeddings()
    great, bad = (tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("great", "bad"))
    vectors = clf.prompt_.embedding.detach()
    assert torch.equal(vectors[0], embed.weight[bad[0]]) and torch.equal(vectors[1], embed.weight[great[0]])
    special = set(tokenizer.all_special_ids)
    assert any(torch.equal(vectors[2], embed.weight[i]) for i in range(len(tokenizer)) if i not in special)
    text = make(tiny_bert_dir, SoftPromptConfig(init="text", init_text="good fun"),
                template="[SOFT:3] {{ text }} [MASK].").prompt_.embedding.detach()
    ids = tokenizer("good fun", add_special_tokens=False)["input_ids"]
    assert [int(torch.where((embed.weight == row).all(dim=1))[0][0]) for row in text] == [ids[0], ids[1], ids[0]]
    one, two = (make(tiny_bert_dir, SoftPromptConfig(init="random"), seed=s).prompt_.embedding.detach()
                for s in (0, 0))
    assert torch.equal(one, two)  # seeded
    assert not any(torch.equal(one[0], row) for row in embed.weight)
    with pytest.raises(ConfigError, match="init_text"):
        make(tiny_bert_dir, SoftPromptConfig(init="text")).prompt_


# -- deep prompts ------------------------------------------------------------------------------------
def _reference_bert(model, ids, attention, prefix):
    """A hand-written BERT forward with a key/value prefix at every layer (the real tokens at positions 0..T-1)."""
    bert = model.bert
    x = bert.embeddings(input_ids=ids)
    batch, length, _ = x.shape
    for layer, (key_prefix, value_prefix) in zip(bert.encoder.layer, prefix):
        attn = layer.attention.self
        heads, size = attn.num_attention_heads, attn.attention_head_size

        def split(t):
            return t.view(batch, length, heads, size).transpose(1, 2)

        q = split(attn.query(x))
        k = torch.cat([key_prefix.expand(batch, -1, -1, -1), split(attn.key(x))], dim=2)
        v = torch.cat([value_prefix.expand(batch, -1, -1, -1), split(attn.value(x))], dim=2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(size)
        visible = torch.cat([torch.ones(batch, key_prefix.shape[2]), attention.float()], dim=1).bool()
        scores = scores.masked_fill(~visible[:, None, None, :], float("-inf"))
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, heads * size)
        hidden = layer.attention.output(context, x)
        x = layer.output(layer.intermediate(hidden), hidden)
    return model.cls(x)


def test_deep_prefix_matches_hand_written_bert(tiny_bert_dir):
    clf = make(tiny_bert_dir, DeepPromptConfig(prefix_length=3, init="random"))
    module, model = clf.prompt_, clf.model_.model
    tokenizer = clf.model_.tokenizer
    batch = tokenizer(["a good movie", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = PromptSet([module]).forward(model, dict(batch)).logits
        reference = _reference_bert(model, batch["input_ids"], batch["attention_mask"],
                                    [(k.unsqueeze(0), v.unsqueeze(0)) for k, v in module.prefix()])
        plain = model(**batch).logits
    real = batch["attention_mask"].bool()
    assert torch.allclose(ours[real], reference[real], atol=1e-5)
    assert not torch.allclose(ours[real], plain[real], atol=1e-3)


def test_deep_prefix_in_causal_continuations(tiny_llama_dir):
    """Multi-token words are scored after the prompted prefix through the cache: the same as one full pass."""
    clf = PromptClassifier(str(tiny_llama_dir), TEMPLATE, {"neg": ["terrible"], "pos": ["great"]},
                           tuning=DeepPromptConfig(prefix_length=2), show_progress=False)
    scorer, module, model = clf.scorer_, clf.prompt_, clf.model_.model
    prompt = clf.template_.render({"text": "a good movie"})
    got = scorer.word_log_probs([prompt], ["terrible"])[0, 0]
    prefix_ids = scorer._encode([scorer._prefix_pieces(prompt)], [64], True, ["0"])[0]
    word = scorer.word_ids("terrible", *scorer.mask_context(prompt))
    ids = torch.tensor([prefix_ids + list(word)])
    with torch.no_grad():
        logits = PromptSet([module]).forward(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}).logits
    log_probs = logits[0].log_softmax(-1)
    expected = sum(float(log_probs[len(prefix_ids) - 1 + j, t]) for j, t in enumerate(word))
    assert len(word) > 1 and got == pytest.approx(expected, abs=1e-5)


def test_prefix_support_is_checked(tiny_gpt2_dir):
    from promptlearn.tuning import check_prefix_support
    from transformers import AutoModelForCausalLM

    check_prefix_support(AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir))  # passes

    class Deaf(torch.nn.Module):  # a "model" that ignores the cache it is given
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, **kwargs):
            kwargs.pop(compat.CACHE_NAME)  # whichever name this transformers gives the cache
            kwargs.pop("attention_mask")
            return self.inner(**kwargs)

    with pytest.raises(ConfigError, match="deep prompts do not work"):
        check_prefix_support(Deaf(AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)))


def test_position_head_shortcut_kept(tiny_bert_dir, tiny_gpt2_dir):
    for path in (tiny_bert_dir, tiny_gpt2_dir):
        for source in ("soft", "deep"):
            clf = make(path, source)
            clf.predict_proba(["a good movie"])
            assert clf.scorer_._head.enabled is True


# -- training: only the prompt trains, it learns, it reloads ------------------------------------------
# Input-side prompts (soft, ptuning) train on the tiny Llama: the tiny random BERT / RoBERTa give the same mask
# prediction whatever the input (p = 0.496 / 0.504 for every text), so no input change can teach them; on a
# real masked LM they are measured by benchmarks/configs/sources_k16_minilm.toml.
LEARNS = [  # (source, model, options, learning rate, task)
    ("soft", "tiny_llama_dir", None, 0.1, "prior"),
    ("ptuning", "tiny_llama_dir", {"encoder": "lstm"}, 0.01, "prior"),
    ("ptuning", "tiny_llama_dir", {"encoder": "mlp"}, 0.01, "prior"),
    ("deep", "tiny_bert_dir", {"reparameterize": True}, 0.01, "prior"),
    ("deep", "tiny_bert_dir", None, 0.3, "prior"),
    ("deep", "tiny_bert_dir", {"readout": "linear", "prefix_length": 4}, 0.05, "prior"),
    ("adapter", "tiny_bert_dir", None, 0.3, "prior"),
    ("bitfit", "tiny_bert_dir", None, 0.01, "prior"),
    ("lora", "tiny_gpt2_dir", None, 0.01, "balanced"),
]


@pytest.mark.parametrize("source, fixture, options, rate, task", LEARNS,
                         ids=[f"{s}-{'-'.join(map(str, (o or {}).values()))}{f[5:-4]}" for s, f, o, *_ in LEARNS])
def test_source_trains_only_its_parameters_learns_and_reloads(source, fixture, options, rate, task, request,
                                                              tmp_path):
    path = request.getfixturevalue(fixture)
    X, y = (PRIOR_X, PRIOR_Y) if task == "prior" else (BALANCED_X, BALANCED_Y)
    clf = make(path, tuning_config(source, {**(options or {}), "learning_rate": rate}),
               training=TrainingOptions(max_steps=60, batch_size=4), seed=1)
    model = clf.model_.model
    before = base_weights(model)
    start = {n: p.detach().clone() for n, p in clf.prompt_.named_parameters()}
    untrained, untrained_loss = clf.score(X, y), cross_entropy(clf, X, y)
    clf.fit(X, y)
    after = base_weights(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # bit-identical
    adapter_weight = {id(p) for p in clf.prompt_.parameters()}
    assert all(not p.requires_grad for p in model.parameters() if id(p) not in adapter_weight)
    trained = dict(clf.prompt_.named_parameters())
    assert all(not torch.equal(start[n], trained[n]) for n in start)  # every prompt tensor trained
    trained_accuracy, trained_loss = clf.score(X, y), cross_entropy(clf, X, y)
    target = 0.75 if task == "prior" else 0.9
    assert trained_loss < untrained_loss - 0.01, (untrained_loss, trained_loss)
    assert trained_accuracy >= target and (trained_accuracy > untrained or untrained >= target), \
        (untrained, trained_accuracy)

    out = clf.save(tmp_path / "prompt")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["README.md", "config.json", "prompt.safetensors"]  # the card; no base model weights
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == str(path) and config["params"]["tuning"]["source"] == source
    assert config["params"]["tuning"]["learning_rate"] == rate
    assert (out / "prompt.safetensors").stat().st_size < 400_000
    reloaded = PromptClassifier.load(out, model=str(path))  # a local base model is named by the caller
    assert np.array_equal(reloaded.predict_proba(X), clf.predict_proba(X))


def test_artifacts_hold_only_the_prompt(tiny_bert_dir, tmp_path):
    """The saved file is the prompt's parameters (4 bytes each) and a small header, never the base model."""
    model_bytes = sum(p.stat().st_size for p in tiny_bert_dir.iterdir() if p.suffix == ".safetensors")
    sizes = {}
    for source, options in [("soft", None), ("ptuning", None), ("ptuning", {"save_encoder": True}), ("deep", None),
                            ("lora", None), ("adapter", None), ("bitfit", None)]:
        clf = make(tiny_bert_dir, tuning_config(source, options))
        out = clf.save(tmp_path / f"{source}{len(sizes)}")
        from safetensors.torch import load_file

        saved = load_file(str(out / "prompt.safetensors"))
        size = (out / "prompt.safetensors").stat().st_size
        values = sum(t.numel() for t in saved.values())
        assert 4 * values <= size < 4 * values + 8192
        sizes[source if not options else "ptuning+encoder"] = size
        reloaded = PromptClassifier.load(out, model=str(tiny_bert_dir))
        assert np.array_equal(reloaded.predict_proba(POS[:2]), clf.predict_proba(POS[:2]))
    assert sizes["ptuning"] < 2048 < sizes["ptuning+encoder"]  # the encoder's output, not the encoder
    assert all(size < model_bytes / 4 for name, size in sizes.items() if name != "ptuning+encoder"), sizes


def test_prompt_configuration_errors(tiny_bert_dir):
    with pytest.raises(ConfigError, match="unknown option"):
        make(tiny_bert_dir, tuning_config("soft", {"tokens": 3})).prompt_
    with pytest.raises(ConfigError, match=r"only the soft and ptuning tuning methods fill \(tuning='deep'\)"):
        make(tiny_bert_dir, "deep", template="[SOFT] {{ text }} [MASK].").prompt_
    with pytest.raises(ConfigError, match="unknown tuning method 'prefix'"):
        make(tiny_bert_dir, "prefix").prompt_
    # trainable (which of the model's own weights fit trains) is the manual method's alone
    with pytest.raises(ConfigError, match="trainable"):
        make(tiny_bert_dir, "soft").set_params(tuning__trainable="top:1")
    with pytest.raises(ConfigError, match="trainable"):  # the flat keywords of earlier releases: refused at once
        PromptClassifier(str(tiny_bert_dir), TEMPLATE, VERBALIZER, source="soft", trainable="top:1")
    with pytest.raises(ConfigError, match="not a PEFT tuner"):
        make(tiny_bert_dir, AdapterPromptConfig(method="prompt_tuning")).prompt_


# -- many prompts, one batch --------------------------------------------------------------------------
BANK = {  # name -> (source, options, template, verbalizer, calibrate)
    "soft": ("soft", None, "[SOFT:2] {{ text }} It [SOFT] was [MASK].", VERBALIZER, False),
    "soft_b": ("soft", {"init": "label_words"}, "{{ text }} [SOFT:3] [MASK].",
               {"n": ["bad", "terrible"], "p": ["good"]}, True),
    "ptuning": ("ptuning", {"encoder": "mlp"}, TEMPLATE, VERBALIZER, False),
    "deep": ("deep", {"prefix_length": 3}, TEMPLATE, VERBALIZER, False),
    "deep_long": ("deep", {"prefix_length": 5, "reparameterize": True, "hidden_size": 16}, TEMPLATE, VERBALIZER, True),
    "linear": ("deep", {"readout": "linear"}, TEMPLATE, VERBALIZER, False),
    "lora": ("lora", {"r": 2}, TEMPLATE, VERBALIZER, False),
    "bitfit": ("bitfit", None, TEMPLATE, VERBALIZER, False),
    "manual": ("manual", None, "{{ text }} All in all , [MASK] .", VERBALIZER, False),
}


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_bank_mixed_batch_equals_separate_runs(fixture, request, tmp_path):
    path = request.getfixturevalue(fixture)
    texts = POS[:3] + NEG[:3] + ["the plot is a mess and the acting is worse , terrible"]
    names = [n for n in BANK if not (n == "bitfit" and fixture == "tiny_llama_dir")]  # Llama has no biases
    separate = {}
    for k, name in enumerate(names):
        source, options, template, verbalizer, calibrate = BANK[name]
        clf = PromptClassifier(str(path), template, verbalizer,
                               tuning=tuning_config(source, {**(options or {}), "learning_rate": 0.05}), seed=k,
                               calibrate=calibrate, training=TrainingOptions(max_steps=2), show_progress=False)
        if source in ("lora", "bitfit", "deep"):  # LoRA's B and BitFit's offsets start at zero: train a little
            clf.fit(POS[:2] + NEG[:2], ["pos", "pos", "neg", "neg"] if verbalizer is VERBALIZER else
                    ["p", "p", "n", "n"])
        clf.save(tmp_path / name)
        separate[name] = PromptClassifier.load(tmp_path / name, model=str(path)).predict_log_proba(texts)
    bank = PromptBank(str(path), batch_size=5)
    for name in names:
        bank.add(name, tmp_path / name)
    rng = np.random.default_rng(0)
    rows = [(name, i) for name in names for i in range(len(texts))]
    rows = [rows[j] for j in rng.permutation(len(rows))]
    got = bank.predict_log_proba_rows([texts[i] for _, i in rows], [name for name, _ in rows])
    errors = {}
    for values, (name, i) in zip(got, rows):
        errors[name] = max(errors.get(name, 0.0), float(np.abs(values - separate[name][i]).max()))
    worst = max(errors.values())
    assert worst < 1e-5, errors
    labels = bank.predict([texts[0], texts[1]], ["soft_b", "soft"])
    assert labels[0] in ("n", "p") and labels[1] in ("neg", "pos")
    with pytest.raises(ConfigError, match="different classes"):
        bank.predict_proba([texts[0], texts[1]], ["soft_b", "soft"])
    assert bank.predict_proba(texts[:2], "deep").shape == (2, 2)


def test_bank_takes_fitted_classifiers_and_checks_base(tiny_bert_dir, tiny_roberta_dir, tmp_path):
    clf = make(tiny_bert_dir, "soft", seed=3)
    bank = PromptBank(str(tiny_bert_dir)).add("mine", clf)
    assert np.allclose(bank.predict_proba(POS[:2], "mine"), clf.predict_proba(POS[:2]), atol=1e-6)
    clf.save(tmp_path / "p")
    with pytest.raises(ConfigError, match="was trained on"):
        PromptBank(str(tiny_roberta_dir)).add("other", tmp_path / "p")
    with pytest.raises(ConfigError, match="unknown prompt"):
        bank.predict(POS[:1], "nobody")


# -- demonstrations, CLI -------------------------------------------------------------------------------
def test_soft_prompt_with_demonstrations_reuses_the_slots(tiny_bert_dir):
    clf = make(tiny_bert_dir, "soft", template="[SOFT:2] {{ text }} It was [MASK].",
               demonstrations=DemonstrationOptions(k=1, pool=(POS[:2] + NEG[:2], ["pos", "pos", "neg", "neg"])))
    prompt = clf.render_prompts(["a fine film"])[0][0]
    row = clf.scorer_._rows([prompt], [(0, 1)])[0]
    assert [t for t in row if t < 0] == [soft_id(0, 0), soft_id(0, 1)] * 3  # the example's and each demo's
    assert np.isfinite(clf.predict_proba(["a fine film"])).all()


def test_cli_train_with_sources(tiny_bert_dir, tmp_path, capsys):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},pos\n" for t in POS[:2]) + "".join(f"{t},neg\n" for t in NEG[:2]))
    verbalizer = tmp_path / "v.json"
    verbalizer.write_text(json.dumps(VERBALIZER))
    common = ["train", "--model", str(tiny_bert_dir), "--template", TEMPLATE, "--verbalizer", str(verbalizer),
              "--train", str(train), "--max-steps", "2"]
    assert main(common + ["--output", str(tmp_path / "soft"), "--source", "soft", "--soft-tokens", "3",
                          "--soft-init", "label_words"]) == 0
    config = json.loads((tmp_path / "soft" / "config.json").read_text())
    assert config["params"]["tuning"]["n_tokens"] == 3 and config["params"]["tuning"]["learning_rate"] == 3e-2
    assert config["template"]["source"].startswith("[SOFT:3] ")
    assert main(common + ["--output", str(tmp_path / "lora"), "--source", "lora", "--lora-r", "2",
                          "--lora-targets", "query,value"]) == 0
    assert json.loads((tmp_path / "lora" / "config.json").read_text())["params"]["tuning"]["target_modules"] \
        == ["query", "value"]
    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(tmp_path / "lora"), "--data", str(train)]) == 2  # a local base model:
    assert "--model" in capsys.readouterr().err  # the folder names it by path, so the caller names it
    assert main(["evaluate", "--model-dir", str(tmp_path / "lora"), "--model", str(tiny_bert_dir), "--data",
                 str(train)]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(common + ["--output", str(tmp_path / "bad"), "--source", "soft", "--prefix-length", "4"]) == 2
    assert "--prefix-length applies to --source deep" in capsys.readouterr().err


def test_template_soft_count_in_loops(tiny_bert_dir):
    template = Template("{% for w in ['a', 'b'] %}[SOFT]{% endfor %} {{ text }} [MASK].")
    clf = PromptClassifier(str(tiny_bert_dir), template, VERBALIZER, tuning="soft", show_progress=False)
    assert clf.prompt_.n_soft == 2
    ctx = BuildContext(clf.model_.model, clf.model_.tokenizer, "masked", n_soft=0)
    assert build_prompt(DeepPromptConfig(prefix_length=2), ctx).prefix_length == 2
