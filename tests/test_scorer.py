"""Scorer correctness against independent, brute-force computations on tiny local models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from promptlearn import Template, TruncationError, Verbalizer
from promptlearn.scorer import CausalLMScorer, MaskedLMScorer, aggregate_words

TEXTS = [
    "the movie was good and the actors were great .",
    "a bad film .",
    "i think it is a very long and boring story about nothing at all , really .",
    "",
]


def _masked(path):
    return AutoModelForMaskedLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _causal(path):
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(path).eval(), tokenizer


def _mlm_reference(model, tokenizer, text: str, word_tokens: list[str], order: str) -> float:
    """log p(word) at a block of len(word_tokens) masks, computed the slow, obvious way."""
    mask = tokenizer.mask_token
    ids = tokenizer(text.replace("[MASK]", mask * len(word_tokens)), return_tensors="pt")["input_ids"][0]
    positions = (ids == tokenizer.mask_token_id).nonzero().flatten().tolist()
    targets = tokenizer.convert_tokens_to_ids(word_tokens)
    assert len(positions) == len(targets)
    with torch.no_grad():
        if order == "parallel":
            log_probs = torch.log_softmax(model(ids[None]).logits[0], dim=-1)
            return sum(float(log_probs[p, t]) for p, t in zip(positions, targets))
        total, remaining = 0.0, list(range(len(targets)))
        while remaining:
            log_probs = torch.log_softmax(model(ids[None]).logits[0], dim=-1)
            candidates = {k: float(log_probs[positions[k], targets[k]]) for k in remaining}
            best = max(candidates, key=candidates.get)
            total += candidates[best]
            ids = ids.clone()
            ids[positions[best]] = targets[best]
            remaining.remove(best)
        return total


def _causal_reference(model, tokenizer, prefix: str, continuation_ids: list[int]) -> float:
    """log p(continuation | prefix) with one full forward and no cache."""
    prefix_ids = tokenizer(prefix)["input_ids"]
    ids = torch.tensor([prefix_ids + continuation_ids])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(ids).logits[0], dim=-1)
    start = len(prefix_ids)
    return sum(float(log_probs[start + j - 1, t]) for j, t in enumerate(continuation_ids))


@pytest.mark.parametrize("fixture, words", [
    ("tiny_bert_dir", {"great": ["great"], "good": ["good"], "bad": ["bad"]}),
    ("tiny_roberta_dir", {"great": ["Ġgreat"], "good": ["Ġgood"], "bad": ["Ġbad"]}),
])
def test_single_token_scores_equal_log_softmax_at_mask(request, fixture, words):
    model, tokenizer = _masked(request.getfixturevalue(fixture))
    template = Template("{{ text }} It was [MASK].")
    scorer = MaskedLMScorer(model, tokenizer, batch_size=3)
    prompts = [template.render({"text": t}) for t in TEXTS]
    got = scorer.word_log_probs(prompts, list(words))
    for i, text in enumerate(TEXTS):
        for j, tokens in enumerate(words.values()):
            expected = _mlm_reference(model, tokenizer, f"{text} It was [MASK].", tokens, "parallel")
            assert got[i, j] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("order", ["parallel", "left_to_right"])
@pytest.mark.parametrize("fixture, word, tokens", [
    ("tiny_bert_dir", "terrible", ["terr", "##ible"]),
    ("tiny_bert_dir", "wonderful", ["wonder", "##ful"]),
    ("tiny_roberta_dir", "terrible", None),
])
def test_multi_token_scores_equal_brute_force(request, order, fixture, word, tokens):
    model, tokenizer = _masked(request.getfixturevalue(fixture))
    if tokens is None:
        tokens = tokenizer.tokenize(" " + word)
    assert len(tokens) > 1
    template = Template("{{ text }} It was [MASK].")
    scorer = MaskedLMScorer(model, tokenizer, multi_token=order, batch_size=2)
    prompts = [template.render({"text": t}) for t in TEXTS]
    got = scorer.word_log_probs(prompts, ["great", word, "bad"])
    for i, text in enumerate(TEXTS):
        expected = _mlm_reference(model, tokenizer, f"{text} It was [MASK].", tokens, order)
        assert got[i, 1] == pytest.approx(expected, abs=1e-5)
        single = _mlm_reference(model, tokenizer, f"{text} It was [MASK].", tokenizer.tokenize(" great"), "parallel")
        assert got[i, 0] == pytest.approx(single, abs=1e-5)


def test_uneven_word_lengths_warn_once(tiny_bert_dir, caplog):
    model, tokenizer = _masked(tiny_bert_dir)
    scorer = MaskedLMScorer(model, tokenizer, batch_size=2)
    prompts = [Template("{{ text }} It was [MASK].").render({"text": t}) for t in TEXTS]
    with caplog.at_level("WARNING", logger="promptlearn.scorer.masked"):
        scorer.word_log_probs(prompts, ["great", "bad"])
        assert not caplog.records  # all one token: nothing to say
        scorer.word_log_probs(prompts, ["great", "terrible", "bad"])
        scorer.word_log_probs(prompts, ["great", "terrible", "bad"])
    assert len(caplog.records) == 1
    assert "'terrible' (2 tokens)" in caplog.text and "'great'" not in caplog.text


def test_mask_at_start_uses_no_leading_space(tiny_roberta_dir):
    model, tokenizer = _masked(tiny_roberta_dir)
    scorer = MaskedLMScorer(model, tokenizer)
    prompt = Template("[MASK]: {{ text }}").render({"text": "who was the first man ?"})
    got = scorer.word_log_probs([prompt], ["great"])
    expected = _mlm_reference(model, tokenizer, "[MASK]: who was the first man ?", tokenizer.tokenize("great"),
                              "parallel")
    assert got[0, 0] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
def test_causal_scores_equal_full_forward(request, fixture):
    model, tokenizer = _causal(request.getfixturevalue(fixture))
    template = Template("Review: {{ text }}\nSentiment: [MASK]")
    scorer = CausalLMScorer(model, tokenizer, batch_size=3)
    words = ["great", "terrible", "wonderful", "bad"]
    prompts = [template.render({"text": t}) for t in TEXTS]
    got = scorer.word_log_probs(prompts, words)
    lengths = []
    for i, text in enumerate(TEXTS):
        for j, word in enumerate(words):
            continuation = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            lengths.append(len(continuation))
            expected = _causal_reference(model, tokenizer, f"Review: {text}\nSentiment:", continuation)
            assert got[i, j] == pytest.approx(expected, abs=1e-4)
    assert max(lengths) > 1 and min(lengths) == 1  # both the single- and the multi-token path were exercised


def test_causal_after_mask_score_includes_suffix(tiny_gpt2_dir):
    model, tokenizer = _causal(tiny_gpt2_dir)
    template = Template("{{ text }} It was [MASK].")
    prompts = [template.render({"text": t}) for t in TEXTS[:2]]
    dropped = CausalLMScorer(model, tokenizer, after_mask="drop").word_log_probs(prompts, ["great"])
    scored = CausalLMScorer(model, tokenizer, after_mask="score").word_log_probs(prompts, ["great"])
    for i, text in enumerate(TEXTS[:2]):
        with_suffix = tokenizer(" great.", add_special_tokens=False)["input_ids"]
        assert scored[i, 0] == pytest.approx(_causal_reference(model, tokenizer, f"{text} It was", with_suffix), abs=1e-4)
        word = tokenizer(" great", add_special_tokens=False)["input_ids"]
        assert dropped[i, 0] == pytest.approx(_causal_reference(model, tokenizer, f"{text} It was", word), abs=1e-4)


@pytest.mark.parametrize("fixture, kind", [("tiny_bert_dir", "masked"), ("tiny_roberta_dir", "masked"),
                                           ("tiny_gpt2_dir", "causal"), ("tiny_llama_dir", "causal")])
def test_batching_does_not_change_scores(request, fixture, kind):
    path = request.getfixturevalue(fixture)
    model, tokenizer = _masked(path) if kind == "masked" else _causal(path)
    cls = MaskedLMScorer if kind == "masked" else CausalLMScorer
    template = Template("{{ text }} It was [MASK].")
    prompts = [template.render({"text": t}) for t in TEXTS]
    words = ["great", "terrible", "bad"]
    batched = cls(model, tokenizer, batch_size=4).word_log_probs(prompts, words)
    single = np.vstack([cls(model, tokenizer, batch_size=1).word_log_probs([p], words) for p in prompts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def _truncation_case(tokenizer, long_text):
    template = Template("{{ text }} It was [MASK].")
    return template.render({"text": long_text})


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_roberta_dir"])
def test_truncation_keeps_mask_and_template_words(request, fixture):
    model, tokenizer = _masked(request.getfixturevalue(fixture))
    scorer = MaskedLMScorer(model, tokenizer, max_length=24)
    long_text = " ".join(["the good movie was great"] * 40)
    prompt = _truncation_case(tokenizer, long_text)
    (ids,) = scorer._rows([prompt], [(0, 2)])
    assert len(ids) == 24  # shortened exactly to the window, PET-style
    assert ids.count(tokenizer.mask_token_id) == 2
    tail = tokenizer(" It was" if "roberta" in fixture else "it was", add_special_tokens=False)["input_ids"]
    mask_at = ids.index(tokenizer.mask_token_id)
    assert ids[mask_at - len(tail):mask_at] == tail
    scores = scorer.word_log_probs([prompt], ["great", "terrible"])
    assert np.isfinite(scores).all()


def test_truncation_shortens_only_the_named_field(tiny_bert_dir):
    model, tokenizer = _masked(tiny_bert_dir)
    scorer = MaskedLMScorer(model, tokenizer, max_length=40)
    template = Template("{{ premise }} ? [MASK] , {{ hypothesis }}", shortenable=["premise"])
    hypothesis = "the man is good"
    prompt = template.render({"premise": " ".join(["a man is walking"] * 30), "hypothesis": hypothesis})
    (ids,) = scorer._rows([prompt], [(0, 1)])
    assert len(ids) <= 40
    tail = tokenizer(hypothesis, add_special_tokens=False)["input_ids"]
    assert ids[-len(tail) - 1:-1] == tail  # hypothesis intact, right before [SEP]


def test_truncation_error_when_template_alone_is_too_long(tiny_bert_dir):
    model, tokenizer = _masked(tiny_bert_dir)
    scorer = MaskedLMScorer(model, tokenizer, max_length=8)
    template = Template("{{ text }} the movie was good and the actors were great and it was [MASK] .")
    with pytest.raises(TruncationError, match="example 0"):
        scorer.word_log_probs([template.render({"text": "bad"})], ["great"])


def test_causal_truncation_keeps_the_end_of_the_prompt(tiny_llama_dir):
    model, tokenizer = _causal(tiny_llama_dir)
    scorer = CausalLMScorer(model, tokenizer, max_length=30)
    template = Template("Review: {{ text }}\nSentiment: [MASK]")
    prompt = template.render({"text": " ".join(["the movie was good"] * 50)})
    scores = scorer.word_log_probs([prompt], ["great", "terrible"])
    assert np.isfinite(scores).all()
    (prefix,) = scorer._encode([scorer._prefix_pieces(prompt)], [30], True, ["example 0"])
    assert len(prefix) <= 30
    assert tokenizer.decode(prefix).endswith("\nSentiment:")


def test_literal_mask_token_inside_text_is_not_a_second_mask(tiny_roberta_dir):
    model, tokenizer = _masked(tiny_roberta_dir)
    scorer = MaskedLMScorer(model, tokenizer)
    prompt = Template("{{ text }} It was [MASK].").render({"text": "i typed <mask> here"})
    assert np.isfinite(scorer.word_log_probs([prompt], ["great"])).all()


def test_aggregation_modes():
    verbalizer = Verbalizer({"a": ["x", "y"], "b": ["z"]})
    word_scores = np.log(np.array([[0.2, 0.4, 0.1]]))
    np.testing.assert_allclose(aggregate_words(word_scores, verbalizer), np.log([[0.3, 0.1]]))
    summed = Verbalizer({"a": ["x", "y"], "b": ["z"]}, aggregation="sum")
    np.testing.assert_allclose(aggregate_words(word_scores, summed), np.log([[0.6, 0.1]]))
    best = Verbalizer({"a": ["x", "y"], "b": ["z"]}, aggregation="max")
    np.testing.assert_allclose(aggregate_words(word_scores, best), np.log([[0.4, 0.1]]))


def test_position_head_shortcut_is_used_and_exact(tiny_bert_dir):
    model, tokenizer = _masked(tiny_bert_dir)
    scorer = MaskedLMScorer(model, tokenizer)
    prompt = Template("{{ text }} It was [MASK].").render({"text": "good"})
    scorer.word_log_probs([prompt], ["great"])
    assert scorer._head.enabled is True


@pytest.mark.parametrize("fixture, kind", [("tiny_bert_dir", "masked"), ("tiny_roberta_dir", "masked"),
                                           ("tiny_gpt2_dir", "causal"), ("tiny_llama_dir", "causal")])
def test_training_scores_match_inference_and_carry_gradients(request, fixture, kind):
    path = request.getfixturevalue(fixture)
    model, tokenizer = _masked(path) if kind == "masked" else _causal(path)
    cls = MaskedLMScorer if kind == "masked" else CausalLMScorer
    scorer = cls(model, tokenizer, batch_size=2)  # inference batches differ from the single training batch
    verbalizer = Verbalizer({"negative": ["terrible", "bad"], "positive": ["great", "wonderful"]})
    prompts = [Template("{{ text }} It was [MASK].").render({"text": t}) for t in TEXTS]
    inference = scorer.score(prompts, verbalizer)
    model.zero_grad()
    training = scorer.class_log_scores(prompts, verbalizer)
    np.testing.assert_allclose(training.detach().double().numpy(), inference, atol=1e-5)
    training[:, 1].sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
