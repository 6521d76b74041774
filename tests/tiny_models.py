"""Tiny, randomly initialised but deterministic language models for tests and benchmarks.

Every ``build_tiny_*`` function writes a complete Hugging Face checkpoint folder (config, safetensors
weights, tokenizer files) to ``path`` and returns ``path``; the folder loads back with
``AutoTokenizer.from_pretrained(path)`` and ``AutoModelFor{MaskedLM,CausalLM}.from_pretrained(path)``.
Nothing is downloaded: the tokenizers are built from word lists here (BERT: a hand-written WordPiece
vocab; RoBERTa/GPT-2/Llama: byte-level BPE trained with the ``tokenizers`` library on a small
generated corpus). The weights are random (``torch.manual_seed`` in each builder), so predictions are
meaningless but reproducible: building twice gives bit-identical weights and identical tokenizers.

Reuse from benchmarks::

    from tests.tiny_models import build_tiny_bert
    path = build_tiny_bert("/tmp/tiny-bert")
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = 1234

# --------------------------------------------------------------------------------------------------
# Word lists. The verbalizer-relevant facts the tests rely on:
#   * "great", "good", "bad" (and the other words in ``SINGLE_TOKEN_WORDS``) are single tokens in
#     every tokenizer (for BPE: with a leading space, e.g. " great").
#   * "terrible" and "wonderful" are NOT whole words anywhere: WordPiece splits them into
#     "terr ##ible" / "wonder ##ful", byte-level BPE into several pieces (they never occur in the
#     BPE training corpus).
# --------------------------------------------------------------------------------------------------

SINGLE_TOKEN_WORDS = ("great", "good", "bad", "fine", "awful", "yes", "no")
MULTI_TOKEN_WORDS = ("terrible", "wonderful")

_FUNCTION_WORDS = """
the a an and or but if then so than that this these those it its it's is was are were be been
being am do does did done have has had not no yes of to in on at by for with from about as into
over after before under between through during without up down out off again very too also just
only really quite all any some many much more most other such own same few each every both either
neither what which who whom whose when where why how there here i me my we us our you your he him
his she her they them their one two three four five six seven eight nine ten first second last
new old can could will would shall should may might must
""".split()

_CONTENT_WORDS = """
great good bad fine nice awful poor excellent boring funny sad happy amazing perfect best worst
better worse love loved like liked hate hated enjoy enjoyed recommend movie film book story plot
actor actors acting music scene scenes ending review product service food place time day days
year years people person man woman world news sports business science technology game team
player season market stocks company price money government election war health school city country
question answer topic sentiment label positive negative neutral true false right wrong sure maybe
think thought feel felt know knew say said see saw make made get got go went come came take took
give gave want look looked watch watched read write wrote work worked play played win won lose
lost buy bought use used need tell told call called try tried leave left keep kept start started
hello world review text sentence example category overall rating stars star quality waste money
wonder fun dull slow fast long short big small high low hot cold early late easy hard simple
""".split()

_PUNCTUATION = list(".,!?;:'\"()-[]/&%$#@*+=<>_")

# WordPiece suffix pieces: single letters and digits (so any lowercase ascii word tokenizes without
# [UNK], as in real BERT vocabs) plus a few multi-letter suffixes.
_SUFFIXES = ["##ible", "##ful", "##ly", "##ing", "##ed", "##s", "##er", "##est", "##ness", "##able"]
_WORD_PIECE_STEMS = ["terr", "wonder"]  # "wonder" is also a whole word; "terr" is only a stem


def bert_vocab() -> list[str]:
    """The WordPiece vocab of the tiny BERT (special tokens first, ids 0..4)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    digits = [str(d) for d in range(10)]
    tokens: list[str] = []
    for tok in (
        _PUNCTUATION
        + digits
        + letters
        + _FUNCTION_WORDS
        + _CONTENT_WORDS
        + _WORD_PIECE_STEMS
        + _SUFFIXES
        + ["##" + c for c in letters + digits]
    ):
        if "'" in tok and len(tok) > 1:  # BertPreTokenizer splits on punctuation; "it's" can't be a token
            continue
        if tok not in tokens and tok not in specials:
            tokens.append(tok)
    for absent in MULTI_TOKEN_WORDS:
        assert absent not in tokens, absent
    return specials + tokens


# --------------------------------------------------------------------------------------------------
# BPE training corpus: a few hundred seeded sentences built from the word lists (cased, with the
# sentence-initial capital letters that make "It" / "The" tokens).
# --------------------------------------------------------------------------------------------------

_ADJS = ["great", "good", "bad", "fine", "nice", "awful", "poor", "excellent", "boring", "funny",
         "amazing", "perfect", "dull", "sad", "happy", "slow", "simple"]
_NOUNS = ["movie", "film", "book", "story", "plot", "acting", "music", "ending", "product",
          "service", "food", "place", "game", "team", "season", "market", "company", "price",
          "school", "city", "news", "review", "scene", "actor", "player", "election"]
_SUBJECTS = ["It", "The movie", "The film", "This book", "The food", "The service", "The game",
             "The story", "This product", "The acting", "The music", "The ending", "The team"]
_VERBS = ["loved", "liked", "hated", "enjoyed", "watched", "read", "bought", "used", "played",
          "recommend", "want", "need", "saw", "made"]
_TOPICS = ["sports", "business", "science", "technology", "world", "health", "politics"]


def bpe_corpus(n: int = 400, seed: int = SEED) -> list[str]:
    """Deterministic list of ``n`` short English sentences for training the byte-level BPEs."""
    rng = random.Random(seed)
    out: list[str] = []
    templates = [
        lambda: f"{rng.choice(_SUBJECTS)} was {rng.choice(_ADJS)}.",
        lambda: f"It was {rng.choice(_ADJS)}.",
        lambda: f"It is {rng.choice(_ADJS)}!",
        lambda: f"I {rng.choice(_VERBS)} the {rng.choice(_NOUNS)} and it was {rng.choice(_ADJS)}.",
        lambda: f"The {rng.choice(_NOUNS)} was {rng.choice(_ADJS)} and the {rng.choice(_NOUNS)} was "
        f"{rng.choice(_ADJS)}.",
        lambda: f"This {rng.choice(_NOUNS)} is really {rng.choice(_ADJS)}, I think.",
        lambda: f"Review: {rng.choice(_SUBJECTS).lower()} was {rng.choice(_ADJS)}. Sentiment: "
        f"{rng.choice(['positive', 'negative'])}",
        lambda: f"Question: Is the {rng.choice(_NOUNS)} {rng.choice(_ADJS)}? Answer: "
        f"{rng.choice(['Yes', 'No', 'yes', 'no'])}.",
        lambda: f"Topic: {rng.choice(_TOPICS)}. The {rng.choice(_NOUNS)} had a {rng.choice(_ADJS)} "
        f"day in {rng.choice(['the city', 'the world', 'the market', 'the country'])}.",
        lambda: f"Hello world, this is a {rng.choice(_ADJS)} {rng.choice(_NOUNS)} with "
        f"{rng.randint(1, 10)} stars out of 10.",
        lambda: f"\"{rng.choice(_SUBJECTS)} was {rng.choice(_ADJS)},\" she said; {rng.choice(['he', 'they', 'we'])} "
        f"{rng.choice(_VERBS)} it (again).",
    ]
    for _ in range(n):
        out.append(rng.choice(templates)())
    text = " ".join(out)
    for absent in MULTI_TOKEN_WORDS:
        assert absent not in text.lower(), absent
    return out


@lru_cache(maxsize=None)
def _trained_bpe(special_tokens: tuple[str, ...], vocab_size: int = 600) -> str:
    """Train a GPT-2 style byte-level BPE; returns the tokenizer's JSON (cached: training is
    deterministic, so the cache only saves time)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(bpe_corpus(), trainer=trainer)
    return tok.to_str()


def _bpe_vocab_merges(special_tokens: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(_trained_bpe(special_tokens))["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


# --------------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------------


def write_bert_vocab(path) -> Path:
    """Write the tiny BERT's ``vocab.txt`` (one token a line, line number = id) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(bert_vocab()) + "\n", encoding="utf-8")
    return path


def make_bert_tokenizer(vocab_file, model_max_length: int = 64):
    """Uncased WordPiece tokenizer from a vocab.txt (see ``write_bert_vocab``).

    transformers 5: pass the file as ``vocab=`` -- ``vocab_file=`` is silently ignored and gives a
    5-token vocab."""
    from transformers import BertTokenizerFast  # an alias of BertTokenizer in transformers 5

    return BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=model_max_length)


def make_roberta_tokenizer(model_max_length: int = 64):
    """RoBERTa-style byte-level BPE: ``<s>``=0 ``<pad>``=1 ``</s>``=2 ``<unk>``=3 ... ``<mask>``=last id.

    The mask token has ``lstrip=True`` like roberta-base, so in "It was <mask>." the space before
    ``<mask>`` is absorbed into the mask (tokens: ``<s> It Ġwas <mask> . </s>``). transformers 5's
    RobertaTokenizer no longer makes the mask lstrip by default, hence the explicit AddedToken."""
    from tokenizers import AddedToken
    from transformers import RobertaTokenizerFast  # an alias of RobertaTokenizer in transformers 5

    vocab, merges = _bpe_vocab_merges(("<s>", "<pad>", "</s>", "<unk>"))
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizerFast(
        vocab=vocab,
        merges=merges,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        model_max_length=model_max_length,
    )


def make_gpt2_tokenizer(model_max_length: int = 128, add_bos_token: bool = False):
    """GPT-2 style byte-level BPE: ``<|endoftext|>`` (id 0) is bos = eos = unk = pad; by default no
    special token is added when encoding."""
    from transformers import GPT2TokenizerFast  # an alias of GPT2Tokenizer in transformers 5

    vocab, merges = _bpe_vocab_merges(("<|endoftext|>",))
    kwargs = {"add_bos_token": True} if add_bos_token else {}
    tok = GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=model_max_length, **kwargs)
    tok.pad_token = tok.eos_token
    return tok


def make_llama_tokenizer(model_max_length: int = 128):
    """The GPT-2 style tokenizer (same vocab and merges) that prepends BOS (``<|endoftext|>``) to every
    sequence, like Llama / SmolLM tokenizers.

    transformers 5 does not save ``add_bos_token`` in tokenizer_config.json; the BOS lives in the
    TemplateProcessing post-processor of tokenizer.json. After reloading, encoding still prepends BOS
    but the ``add_bos_token`` attribute reads False -- detect BOS by encoding, not by that flag."""
    return make_gpt2_tokenizer(model_max_length, add_bos_token=True)


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------


def _save(model, tokenizer, path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _bert_config(tok, **extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
        **extra,
    )


def build_tiny_bert(path, seed: int = SEED) -> Path:
    from transformers import BertForMaskedLM

    tok = make_bert_tokenizer(write_bert_vocab(Path(path) / "vocab.txt"))
    torch.manual_seed(seed)
    return _save(BertForMaskedLM(_bert_config(tok)), tok, path)


def build_tiny_bert_encoder(path, seed: int = SEED) -> Path:
    """A BERT encoder *without* MLM head (BertModel), with the tiny BERT tokenizer."""
    from transformers import BertModel

    tok = make_bert_tokenizer(write_bert_vocab(Path(path) / "vocab.txt"))
    torch.manual_seed(seed)
    return _save(BertModel(_bert_config(tok)), tok, path)


def build_tiny_seqcls(path, seed: int = SEED) -> Path:
    """A BertForSequenceClassification checkpoint (2 labels): not a language model."""
    from transformers import BertForSequenceClassification

    tok = make_bert_tokenizer(write_bert_vocab(Path(path) / "vocab.txt"))
    torch.manual_seed(seed)
    cfg = _bert_config(tok, num_labels=2, id2label={0: "negative", 1: "positive"},
                       label2id={"negative": 0, "positive": 1})
    return _save(BertForSequenceClassification(cfg), tok, path)


def build_tiny_roberta(path, seed: int = SEED) -> Path:
    from transformers import RobertaConfig, RobertaForMaskedLM

    tok = make_roberta_tokenizer()
    cfg = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=66,  # 64 + padding_idx + 1, as RoBERTa does (514 = 512 + 2)
        type_vocab_size=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    assert cfg.pad_token_id == 1
    torch.manual_seed(seed)
    return _save(RobertaForMaskedLM(cfg), tok, path)


def build_tiny_gpt2(path, seed: int = SEED) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = make_gpt2_tokenizer()
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return _save(GPT2LMHeadModel(cfg), tok, path)


def build_tiny_llama(path, seed: int = SEED) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_llama_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return _save(LlamaForCausalLM(cfg), tok, path)


BUILDERS = {
    "bert": build_tiny_bert,
    "roberta": build_tiny_roberta,
    "gpt2": build_tiny_gpt2,
    "llama": build_tiny_llama,
    "bert_encoder": build_tiny_bert_encoder,
    "seqcls": build_tiny_seqcls,
}
