"""How close promptlearn runs to the bare model, on whatever device is present (CPU or one GPU).

Three ratios, each measured against the bare model in the same run:

* **host overhead** (always on the CPU, one torch and one tokenizer thread): a 1-layer, hidden-32 BERT whose
  forward costs next to nothing, batch 64,
  4,096 prompts: ``(predict_proba time - bare forward time) / tokenizer time`` — the per-example Python work
  outside the model, in units of what the fast tokenizer alone needs for the same prompts (batched, batch 64).
* **scoring**: ``predict_proba`` against the bare batched forward over the same prompts (pre-tokenized, sorted by
  length, already on the device; the vocabulary projection applied only at the mask / last position), batch 64,
  4,096 prompts, for bert-base, bert-large and a SmolLM2-sized Llama (random weights from their configs: the cost
  does not depend on the weights), in float32 and bfloat16.
* **training step**: one optimizer step of ``PromptClassifier.fit`` (batch 16; measured as the difference between
  a long and a short run, so set-up cancels) against a bare forward + backward + gradient clipping + AdamW step on
  the same batches. bfloat16 means mixed precision in both: float32 weights and optimizer state, the forward under
  ``torch.autocast(bfloat16)``.

Run:  python -m benchmarks.gpu [--device cuda] [--models bert-base bert-large smollm2-sized] [--quick]
Writes benchmarks/results/gpu_<device>.json; ``python -m benchmarks.report`` renders RESULTS.md. Texts: the
LM-BFF SST-2 test sentences when ``PROMPTLEARN_DATA`` (or ../shared/data) has them, else ``--texts FILE`` (one per
line), else a generated corpus.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks.common import environment, write_result
from promptlearn import ManualConfig, PromptClassifier, ScoringOptions, TrainingOptions

N_PROMPTS = 4096
SCORE_BATCH = 64
TRAIN_BATCH = 16
MODELS = ("bert-base", "bert-large", "smollm2-sized")


def _texts(path: str | None) -> tuple[list[str], str]:
    if path:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return lines, path
    try:
        from promptlearn.io.tasks import load_lmbff_task

        examples, _ = load_lmbff_task("sst2", "test")
        return [e["text"] for e in examples], "LM-BFF SST-2 test"
    except Exception:  # no shared data here: a generated corpus of the same kind of sentences
        from tests.tiny_models import bpe_corpus

        return bpe_corpus(2000, seed=7), "generated corpus (tests.tiny_models.bpe_corpus)"


def _cycle(texts: list[str], n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        block = list(texts)
        rng.shuffle(block)
        out.extend(block)
    return out[:n]


def _best(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


# -- tokenizers and models from configs ---------------------------------------------------------------------
def _wordpiece(texts: list[str], folder: Path) -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=8000, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    fast.save_pretrained(folder)
    return BertTokenizerFast.from_pretrained(folder)


def _byte_bpe(texts: list[str], folder: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=8000, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", model_max_length=2048)
    fast.save_pretrained(folder)
    return PreTrainedTokenizerFast.from_pretrained(folder)


def _model(name: str, texts: list[str], folder: Path) -> tuple[Any, Any, str]:
    """(model in float32, tokenizer, kind) built from a config with random weights."""
    from transformers import BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if name.startswith("bert") or name == "tiny-bert":
        tokenizer = _wordpiece(texts, folder / name)
        sizes = {"bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                   intermediate_size=3072),
                 "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                    intermediate_size=4096),
                 "tiny-bert": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)}
        # the tiny model (host overhead) has only the tokenizer's vocabulary, so that its forward costs next to nothing
        vocab = len(tokenizer) if name == "tiny-bert" else 30522
        config = BertConfig(vocab_size=vocab, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                            **sizes[name])
        return BertForMaskedLM(config).eval(), tokenizer, "masked"
    tokenizer = _byte_bpe(texts, folder / name)
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer, "causal"


def _prompt(kind: str, tokenizer: Any) -> tuple[str, dict[str, list[str]], Callable[[str], str]]:
    if kind == "masked":
        return ("{{ text }} It was [MASK].", {"negative": ["bad"], "positive": ["good"]},
                lambda t: f"{t} It was {tokenizer.mask_token}.")
    return ("Review: {{ text }}\nSentiment: [MASK]", {"negative": ["bad"], "positive": ["good"]},
            lambda t: f"Review: {t}\nSentiment:")


def _parts(model: Any, kind: str) -> tuple[Any, Any]:
    """(backbone, head) of a masked or causal LM."""
    return (model.bert, model.cls) if kind == "masked" else (model.model, model.lm_head)


def _word_ids(kind: str, tokenizer: Any, verbalizer: dict[str, list[str]]) -> list[int]:
    if kind == "masked":
        return [tokenizer(words[0], add_special_tokens=False)["input_ids"][0] for words in verbalizer.values()]
    return [tokenizer(" " + words[0], add_special_tokens=False)["input_ids"][0] for words in verbalizer.values()]


def _bare_batches(kind: str, tokenizer: Any, texts: list[str], batch: int, device: str) -> list[dict]:
    """The prompts tokenized, sorted by length, padded and on the device, with the read positions."""
    encoded = tokenizer(texts)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    out = []
    for start in range(0, len(order), batch):
        rows = [encoded[i] for i in order[start:start + batch]]
        padded = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
        ids, mask = padded["input_ids"].to(device), padded["attention_mask"].to(device)
        if kind == "masked":
            rows_at, cols_at = (ids == tokenizer.mask_token_id).nonzero(as_tuple=True)
        else:
            rows_at, cols_at = torch.arange(len(rows), device=device), mask.sum(dim=1) - 1
        out.append({"input_ids": ids, "attention_mask": mask, "rows": rows_at, "cols": cols_at,
                    "order": order[start:start + batch]})
    return out


def _bare_scores(backbone: Any, head: Any, batch: dict, word_ids: torch.Tensor) -> torch.Tensor:
    hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    logits = head(hidden[batch["rows"], batch["cols"]])
    return torch.log_softmax(logits.float(), dim=-1)[:, word_ids]


# -- the three measurements ----------------------------------------------------------------------------------
def host_overhead(texts: list[str], folder: Path, repeats: int) -> dict[str, Any]:
    """On the CPU, one thread, a model whose forward costs next to nothing: the host work per example."""
    threads, parallel = torch.get_num_threads(), os.environ.get("TOKENIZERS_PARALLELISM")
    torch.set_num_threads(1)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one tokenizer thread too: host work in single-core units
    try:
        prompts = _cycle(texts, N_PROMPTS, seed=1)
        model, tokenizer, kind = _model("tiny-bert", texts, folder)
        template, verbalizer, as_text = _prompt(kind, tokenizer)
        rendered = [as_text(t) for t in prompts]
        word_ids = torch.tensor(_word_ids(kind, tokenizer, verbalizer))
        backbone, head = _parts(model, kind)
        clf = PromptClassifier(model, template, verbalizer, tokenizer=tokenizer,
                               scoring=ScoringOptions(batch_size=SCORE_BATCH), show_progress=False, device="cpu")
        batches = _bare_batches(kind, tokenizer, rendered, SCORE_BATCH, "cpu")

        def bare() -> None:
            with torch.inference_mode():
                for batch in batches:
                    _bare_scores(backbone, head, batch, word_ids)

        def tokenize() -> None:
            for start in range(0, len(rendered), SCORE_BATCH):
                tokenizer(rendered[start:start + SCORE_BATCH])["input_ids"]

        nothing = lambda: None  # noqa: E731
        tokenizer_s = _best(tokenize, repeats, nothing)
        bare_s = _best(bare, repeats, nothing)
        ours_s = _best(lambda: clf.predict_proba(prompts), repeats, nothing)
    finally:
        torch.set_num_threads(threads)
        if parallel is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = parallel
    n = len(prompts)
    return {"n": n, "batch_size": SCORE_BATCH, "tokenizer_us": 1e6 * tokenizer_s / n, "bare_us": 1e6 * bare_s / n,
            "predict_proba_us": 1e6 * ours_s / n, "host_us": 1e6 * (ours_s - bare_s) / n,
            "ratio": (ours_s - bare_s) / tokenizer_s}


def scoring(name: str, dtype: str, texts: list[str], folder: Path, device: str, repeats: int,
            n_prompts: int = N_PROMPTS) -> dict[str, Any]:
    prompts = _cycle(texts, n_prompts, seed=2)
    model, tokenizer, kind = _model(name, texts, folder)
    model.to(device=device, dtype=getattr(torch, dtype))
    template, verbalizer, as_text = _prompt(kind, tokenizer)
    word_ids = torch.tensor(_word_ids(kind, tokenizer, verbalizer), device=device)
    backbone, head = _parts(model, kind)
    batches = _bare_batches(kind, tokenizer, [as_text(t) for t in prompts], SCORE_BATCH, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def bare() -> None:
        with torch.inference_mode():
            for batch in batches:
                _bare_scores(backbone, head, batch, word_ids)

    clf = PromptClassifier(model, template, verbalizer, tokenizer=tokenizer,
                           scoring=ScoringOptions(batch_size=SCORE_BATCH), show_progress=False)
    bare_s = _best(bare, repeats, sync)
    ours_s = _best(lambda: clf.predict_proba(prompts), repeats, sync)
    bare_s = min(bare_s, _best(bare, repeats, sync))  # interleaved: the limit measured before and after
    # the same numbers: predict_proba's log-probabilities against the bare ones (first batch)
    with torch.inference_mode():
        first = batches[0]
        expected = torch.log_softmax(_bare_scores(backbone, head, first, word_ids), dim=-1).cpu().numpy()
    got = np.log(clf.predict_proba([prompts[i] for i in first["order"]]))
    n = len(prompts)
    del clf, model, batches
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"model": name, "kind": kind, "dtype": dtype, "n": n, "batch_size": SCORE_BATCH,
            "bare_ex_per_s": n / bare_s, "promptlearn_ex_per_s": n / ours_s, "ratio": bare_s / ours_s,
            "max_abs_difference": float(np.abs(expected - got).max())}


def training_step(name: str, dtype: str, texts: list[str], folder: Path, device: str, steps: int) -> dict[str, Any]:
    model, tokenizer, kind = _model(name, texts, folder)
    model.to(device)
    template, verbalizer, as_text = _prompt(kind, tokenizer)
    train = _cycle(texts, 256, seed=3)
    labels = [i % 2 for i in range(len(train))]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    half = dtype != "float32"
    autocast = (lambda: torch.autocast(torch.device(device).type, dtype=getattr(torch, dtype))) if half else None

    # bare: forward + backward + clip + AdamW on the same batches (float32 weights; autocast in bfloat16)
    word_ids = torch.tensor(_word_ids(kind, tokenizer, verbalizer), device=device)
    backbone, head = _parts(model, kind)
    rendered = [as_text(t) for t in train]
    batches = []
    for start in range(0, len(rendered), TRAIN_BATCH):
        rows = tokenizer(rendered[start:start + TRAIN_BATCH])["input_ids"]
        padded = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
        ids, mask = padded["input_ids"].to(device), padded["attention_mask"].to(device)
        if kind == "masked":
            at = (ids == tokenizer.mask_token_id).nonzero(as_tuple=True)
        else:
            at = (torch.arange(len(rows), device=device), mask.sum(dim=1) - 1)
        target = torch.tensor(labels[start:start + TRAIN_BATCH], device=device)
        batches.append(({"input_ids": ids, "attention_mask": mask, "rows": at[0], "cols": at[1]}, target))
    parameters = [p for p in model.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=1e-6, foreach=True)
    model.train()

    def bare_steps(count: int) -> None:
        for k in range(count):
            batch, target = batches[k % len(batches)]
            if autocast is not None:
                with autocast():
                    scores = _bare_scores(backbone, head, batch, word_ids)
            else:
                scores = _bare_scores(backbone, head, batch, word_ids)
            loss = torch.nn.functional.cross_entropy(scores, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    bare_steps(3)
    sync()
    start = time.perf_counter()
    bare_steps(steps)
    sync()
    bare_s = (time.perf_counter() - start) / steps
    del optimizer
    model.eval()

    def fit(count: int) -> float:
        clf = PromptClassifier(model, template, verbalizer, tokenizer=tokenizer,
                               training=TrainingOptions(batch_size=TRAIN_BATCH, max_steps=count),
                               tuning=ManualConfig(learning_rate=1e-6), show_progress=False,
                               dtype=None if dtype == "float32" else dtype)
        sync()
        begin = time.perf_counter()
        clf.fit(train, labels)
        sync()
        return time.perf_counter() - begin

    fit(3)
    short, long = min(fit(3) for _ in range(2)), fit(3 + steps)
    ours_s = (long - short) / steps
    model.float()
    return {"model": name, "kind": kind, "dtype": dtype, "batch_size": TRAIN_BATCH, "steps": steps,
            "bare_step_ms": 1e3 * bare_s, "promptlearn_step_ms": 1e3 * ours_s, "ratio": ours_s / bare_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS + ("tiny-bert",))
    parser.add_argument("--n-prompts", type=int, default=N_PROMPTS, help="prompts scored per measurement")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--texts", help="a file of texts, one per line (default: LM-BFF SST-2 test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], choices=["host", "scoring", "training"])
    args = parser.parse_args()
    texts, source = _texts(args.texts)
    result: dict[str, Any] = {"benchmark": "gpu", "texts": source, "device_kind": args.device,
                              "environment": environment()}
    kind = torch.device(args.device).type
    command = "python -m benchmarks.gpu " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}" for k, v in vars(args).items()
        if v not in (None, []) and k != "device") + f" --device {args.device}"

    def save() -> None:  # after every measurement: a run stopped by a time limit keeps what it measured
        write_result(f"gpu_{kind}", result, command=command)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "host" not in args.skip:
            result["host_overhead"] = host_overhead(texts, folder, args.repeats)
            print("host overhead", result["host_overhead"], flush=True)
            save()
        result["scoring"], result["training"] = [], []
        for name in args.models:
            for dtype in args.dtypes:
                if "scoring" not in args.skip:
                    row = scoring(name, dtype, texts, folder, args.device, args.repeats, args.n_prompts)
                    result["scoring"].append(row)
                    print("scoring", row, flush=True)
                    save()
                if "training" not in args.skip:
                    row = training_step(name, dtype, texts, folder, args.device, args.train_steps)
                    result["training"].append(row)
                    print("training", row, flush=True)
                    save()
    save()


if __name__ == "__main__":
    main()
