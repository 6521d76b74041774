"""The ``promptlearn`` command: ``classify`` texts and ``evaluate`` a prompt on labelled data.

Errors the user can fix are printed as one line (no traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .artifacts import atomic_write, atomic_write_text
from .errors import PromptlearnError

logger = logging.getLogger("promptlearn")

EPILOG_CLASSIFY = """examples:
  promptlearn classify --template sst2/review --text "A gorgeous, witty film."
  promptlearn classify --model ./my-roberta --template sst2/it_was --verbalizer sst2 --input reviews.csv \\
      --column text=review --output predictions.csv --calibrate
  cat texts.jsonl | promptlearn classify --template agnews/topic --input - --format jsonl
"""

EPILOG_TRAIN = """examples:
  promptlearn train --model ./my-mlm --template sst2/it_was --data ../shared/data/lm-bff/k-shot/SST-2/16-13 \\
      --output runs/sst2-13 --learning-rate 1e-4 --max-steps 200 --eval-every 20
  promptlearn evaluate --model-dir runs/sst2-13 --data ../shared/data/lm-bff/k-shot/SST-2/16-13
  promptlearn train ... --output runs/sst2-13 --resume        # after an interruption
  promptlearn train --model ./my-mlm --template sst2/it_was --template sst2/review --ensemble weighted \\
      --data ../shared/data/lm-bff/k-shot/SST-2/16-13 --output runs/sst2-pet --max-steps 200
  promptlearn train ... --template A --template B --unlabeled unlabelled.csv --ipet-generations 2 --distill \\
      --student finetune --output runs/ipet-student     # iPET, then distil into one sequence classifier
  promptlearn train --model ./my-mlm --template "[SOFT:4] {{ text }} [SOFT:2] [MASK]." --verbalizer sst2 \\
      --source soft --soft-init label_words --data sst2 --output runs/sst2-soft   # prompt tuning (base frozen)
  promptlearn train ... --source deep --prefix-length 16 --readout linear --output runs/sst2-deep  # P-tuning v2
  promptlearn train ... --source lora --lora-r 8 --output runs/sst2-lora       # LoRA through PEFT
"""

# --source options: flag -> (the sources it applies to, the source option it sets)
SOURCE_FLAGS = {
    "soft_tokens": (("soft", "ptuning"), "n_tokens"), "soft_init": (("soft",), "init"),
    "soft_init_text": (("soft",), "init_text"), "ptuning_encoder": (("ptuning",), "encoder"),
    "encoder_hidden": (("ptuning", "deep"), "hidden_size"), "prefix_length": (("deep",), "prefix_length"),
    "prefix_init": (("deep",), "init"), "prefix_projection": (("deep",), "reparameterize"),
    "readout": (("deep",), "readout"), "lora_r": (("lora",), "r"), "lora_alpha": (("lora",), "lora_alpha"),
    "lora_dropout": (("lora",), "lora_dropout"), "lora_targets": (("lora",), "target_modules"),
    "adapter_method": (("adapter",), "method"), "bitfit_pattern": (("bitfit",), "pattern"),
}

EPILOG_EVALUATE = """examples:
  promptlearn evaluate --template sst2/review --data ../shared/data/lm-bff/k-shot/SST-2/16-13
  promptlearn evaluate --template trec/question --data trec --limit 200 --seed 0 --calibrate --output report.json
  promptlearn evaluate --template sst2/review --data labelled.csv --column text=review --label-column stars
"""


def _add_prompt_options(parser: argparse.ArgumentParser, *, template_required: bool = True,
                        repeatable: bool = False) -> None:
    group = parser.add_argument_group("model and prompt")
    group.add_argument("--model", default="smollm2",
                       help="hub id, local folder, .gguf file, or short name: smollm2 (default, packaged), "
                            "gemma3-270m (optional package)")
    group.add_argument("--gguf-file", help="GGUF file inside --model's folder")
    group.add_argument("--template", required=template_required, action="append" if repeatable else "store",
                       help="template file (.j2), shipped name task/name (e.g. sst2/it_was; see `promptlearn "
                            "templates`), or Jinja text containing [MASK]"
                            + ("" if template_required else " (required unless --model-dir)")
                            + ("; repeat it for an ensemble" if repeatable else ""))
    group.add_argument("--verbalizer", action="append" if repeatable else "store",
                       help="verbalizer file (.json or 'label: word, word' text), or shipped name (e.g. sst2); "
                            "default for a shipped template task/name: task_name, else task"
                            + ("; with several --template: one for all, or one per template in the same order"
                               if repeatable else ""))
    group.add_argument("--shorten", action="append", metavar="FIELD",
                       help="field that truncation may shorten (repeatable; default: every field)")
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument("--calibrate", action="store_true", help="contextual calibration (content-free inputs)")
    scoring.add_argument("--multi-token", choices=("parallel", "left_to_right"), default="parallel",
                         help="decoding of multi-token label words with masked LMs (default: parallel)")
    scoring.add_argument("--after-mask", choices=("drop", "score"), default="drop",
                         help="causal LMs: drop the text after [MASK] or score it with each word (default: drop)")
    scoring.add_argument("--aggregation", choices=("mean", "max", "sum"), default="mean",
                         help="how several label words of one class combine (default: mean probability)")
    scoring.add_argument("--batch-size", type=_positive_int, default=16, help="examples per forward pass (default 16)")
    scoring.add_argument("--max-length", type=_positive_int, help="token budget of one prompt (default: model window)")
    scoring.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    demos = parser.add_argument_group("in-context demonstrations")
    demos.add_argument("--demos", type=_non_negative_int, metavar="K",
                       help="K labelled demonstrations per class in every prompt, rendered with the template and "
                            "their label word: after the example for masked LMs (LM-BFF), before it for causal LMs "
                            "(a k-shot prompt); default 0")
    demos.add_argument("--demo-pool", metavar="FILE",
                       help="labelled examples to draw demonstrations from: a CSV / TSV / JSONL file (label column "
                            "'label' or --label-column; --column maps fields) or an LM-BFF folder (its train split)"
                            + ("; default for train: the training data" if repeatable else ""))
    demos.add_argument("--demo-selection", choices=("random", "balanced", "similar"),
                       help="random (default), balanced (equal per class; causal LMs), or similar (nearest by "
                            "all-MiniLM-L6-v2 sentence embeddings, drawn from the top half per class, as LM-BFF)")
    demos.add_argument("--demo-sets", type=_positive_int, metavar="N",
                       help="ensemble N demonstration sets drawn with different seeds (default 1)")
    demos.add_argument("--chat-template", action="store_true",
                       help="causal instruct models: wrap demonstrations and example as a user message in the "
                            "tokenizer's chat template; the label word starts the assistant's reply")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input data")
    group.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                       help="map a template field to a file column, e.g. text=review (repeatable)")
    group.add_argument("--format", dest="fmt", choices=("csv", "tsv", "jsonl"),
                       help="format of --input/--data when the extension does not say (required for stdin "
                            "unless it can be sniffed)")


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptlearn",
                                     description="Prompt-based zero- and few-shot text classification.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"promptlearn {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    classify = commands.add_parser("classify", help="classify texts with a prompt",
                                   description="Classify texts zero-shot: fill the template's [MASK] with each "
                                               "class's label words and report the most probable class.",
                                   epilog=EPILOG_CLASSIFY, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_prompt_options(classify)
    _add_data_options(classify)
    source = classify.add_argument_group("texts")
    source.add_argument("--text", action="append", default=[], help="a text to classify (repeatable)")
    source.add_argument("--input", help="CSV / TSV (with header) / JSONL file of examples, or - for stdin")
    source.add_argument("--output", help="write predictions to this .csv / .tsv / .jsonl file (default: stdout, TSV)")
    classify.set_defaults(run=run_classify)

    evaluate = commands.add_parser("evaluate", help="accuracy, macro-F1 and confusion matrix on labelled data",
                                   description="Evaluate a prompt on labelled data: an LM-BFF k-shot folder "
                                               "(its test split by default), a task name (sst2, sst2:21, agnews, "
                                               "boolq, ...) or a labelled CSV / TSV / JSONL file.",
                                   epilog=EPILOG_EVALUATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_prompt_options(evaluate, template_required=False)
    evaluate.add_argument("--model-dir", help="a classifier saved by `promptlearn train` (replaces --model, "
                                              "--template and --verbalizer)")
    _add_data_options(evaluate)
    data = evaluate.add_argument_group("evaluation data")
    data.add_argument("--data", required=True, help="LM-BFF folder, task name, or labelled file (- for stdin)")
    data.add_argument("--split", default="test", help="split of a folder or task (default: test)")
    data.add_argument("--label-column", default="label", help="label column of a file (default: label)")
    data.add_argument("--limit", type=_positive_int, help="evaluate a fixed seeded subset of this many examples")
    data.add_argument("--seed", type=int, default=0, help="seed of the --limit subset (default 0)")
    data.add_argument("--output", help="also write the report as JSON to this file")
    evaluate.set_defaults(run=run_evaluate)

    train = commands.add_parser("train", help="prompt-based fine-tuning (PET / LM-BFF) on a few labelled examples",
                                description="Fine-tune the model through the prompt: cross-entropy over the "
                                            "verbalizer's class scores (PET / LM-BFF), then save the classifier.",
                                epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_prompt_options(train, repeatable=True)
    _add_data_options(train)
    inputs = train.add_argument_group("training data")
    inputs.add_argument("--data", help="LM-BFF k-shot folder or task name (sst2, sst2:21): its train and dev splits")
    inputs.add_argument("--train", help="labelled training file (CSV / TSV / JSONL)")
    inputs.add_argument("--dev", help="labelled dev file for model selection (default with --data: its dev split)")
    inputs.add_argument("--unlabeled", help="unlabelled examples (file): for --distill and --ipet-generations, and "
                                            "the auxiliary LM loss (--mlm-weight)")
    inputs.add_argument("--label-column", default="label", help="label column of the files (default: label)")
    inputs.add_argument("--output", required=True, help="folder to save the trained classifier in")
    inputs.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    inputs.add_argument("--resume", action="store_true", help="continue an interrupted run from --output's checkpoint")
    hyper = train.add_argument_group("hyper-parameters")
    hyper.add_argument("--learning-rate", type=float,
                       help="AdamW learning rate (default 1e-5; with --source, that source's starting point: soft "
                            "3e-2, ptuning 1e-3, deep 1e-2, lora 5e-4, adapter 3e-3, bitfit 1e-3)")
    hyper.add_argument("--epochs", type=float, default=10.0, help="passes over the training data (default 10)")
    hyper.add_argument("--max-steps", type=_positive_int, help="optimizer steps (overrides --epochs)")
    hyper.add_argument("--train-batch-size", type=_positive_int, default=8, help="examples per step (default 8)")
    hyper.add_argument("--gradient-accumulation", type=_positive_int, default=1,
                       help="micro-batches per optimizer step (default 1)")
    hyper.add_argument("--warmup-ratio", type=float, default=0.0, help="linear warm-up share of the steps")
    hyper.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    hyper.add_argument("--trainable", default="all",
                       help="all (default), no_embeddings, bottom_frozen:N (freeze embeddings and N lowest "
                            "layers) or top:N (train only the N top layers and the head)")
    hyper.add_argument("--mlm-weight", type=float, default=0.0,
                       help="PET's auxiliary LM loss weight on --unlabeled text: (1-w)*CE + w*LM (PET: 1e-4; "
                            "default 0, off)")
    hyper.add_argument("--eval-every", type=_positive_int, help="evaluate on dev every N steps (default: at the end)")
    hyper.add_argument("--patience", type=_positive_int, help="stop after N evaluations without dev gain")
    hyper.add_argument("--seed", type=int, default=0, help="seed of data order, dropout and masking (default 0)")
    several = train.add_argument_group("ensembles (several --template), distillation and iPET (PET)")
    several.add_argument("--ensemble", choices=("mean", "log_mean", "weighted", "vote"),
                         help="how the prompts' predictions combine: mean probability, mean log-probability, "
                              "weighted by each prompt's accuracy on the training data before training (PET), or "
                              "majority vote (default with several --template: mean); saves a PromptEnsemble")
    several.add_argument("--distill", action="store_true",
                         help="label --unlabeled with the ensemble's soft targets and train one --student on them; "
                              "--output then holds the student")
    several.add_argument("--student", choices=("finetune", "prompt"), default="finetune",
                         help="distilled model: a sequence classifier on --model (default) or a prompt classifier "
                              "with the first --template")
    several.add_argument("--temperature", type=float, default=2.0,
                         help="soft targets = softmax(ensemble log-probabilities / T) (default 2, as PET)")
    several.add_argument("--ipet-generations", type=int, default=0, metavar="N",
                         help="iPET generations after PET: each prompt is retrained on the labelled data plus "
                              "--unlabeled examples labelled by the other prompts, 5x more per generation")
    sources = train.add_argument_group(
        "continuous prompts and lightweight fine-tuning (the base model stays frozen; --output holds only the "
        "prompt's parameters and the base model's name)")
    sources.add_argument("--source", default="manual",
                         choices=("manual", "soft", "ptuning", "deep", "lora", "adapter", "bitfit"),
                         help="what trains: manual (the model's weights, PET / LM-BFF; default), soft (prompt tuning: "
                              "the template's [SOFT] / [SOFT:n] slots), ptuning (those from an LSTM/MLP encoder), "
                              "deep (P-tuning v2: key/value prefixes at every layer), lora / adapter (PEFT), bitfit "
                              "(biases only)")
    sources.add_argument("--soft-tokens", type=_positive_int, metavar="N",
                         help="soft / ptuning with a template without [SOFT] slots: prepend [SOFT:N] (default 8)")
    sources.add_argument("--soft-init", choices=("vocab", "label_words", "text", "random"),
                         help="soft: start from random vocabulary embeddings (default), the label words', "
                              "--soft-init-text's, or random noise (weak)")
    sources.add_argument("--soft-init-text", help="soft: the text whose token embeddings start the soft prompt")
    sources.add_argument("--ptuning-encoder", choices=("lstm", "mlp"),
                         help="ptuning: the prompt encoder (default lstm)")
    sources.add_argument("--encoder-hidden", type=_positive_int, metavar="N",
                         help="ptuning: encoder width (default: the embedding size); deep: the MLP's with "
                              "--prefix-projection (default 512)")
    sources.add_argument("--prefix-length", type=_positive_int, metavar="N",
                         help="deep: keys/values per layer (default 8)")
    sources.add_argument("--prefix-init", choices=("vocab", "random"),
                         help="deep: the model's own keys/values of random tokens (default) or normal noise")
    sources.add_argument("--prefix-projection", action="store_true",
                         help="deep: prefix tuning's MLP reparameterisation")
    sources.add_argument("--readout", choices=("verbalizer", "linear"),
                         help="deep: class scores from the label words at the mask (default) or a linear head on "
                              "the mask's hidden state (P-tuning v2's)")
    sources.add_argument("--lora-r", type=_positive_int, help="lora: rank (default 8)")
    sources.add_argument("--lora-alpha", type=float, help="lora: scaling alpha (default 16)")
    sources.add_argument("--lora-dropout", type=float, help="lora: dropout (default 0)")
    sources.add_argument("--lora-targets", metavar="NAMES",
                         help="lora: comma-separated module names (default: PEFT's for the architecture)")
    sources.add_argument("--adapter-method", metavar="PEFT_TYPE",
                         help="adapter: a PEFT tuner such as ia3 (default), loha, lokr, oft, vera, ln_tuning")
    sources.add_argument("--bitfit-pattern", metavar="REGEX", help="bitfit: train only the biases whose names match")
    train.set_defaults(run=run_train)

    adapt = commands.add_parser(
        "adapt", help="continued masked-LM training on unlabelled text (adds an MLM head if missing)",
        description="Domain-adaptive continued masked-LM training on unlabelled text.\n\n"
                    "recipe:\n"
                    "  1. load --model as a masked LM; when the checkpoint has no masked-LM head (e.g. a\n"
                    "     sentence-transformers encoder such as minilm) a fresh head is added, its decoder\n"
                    "     tied to the word embeddings\n"
                    "  2. phase 1: train that head alone, everything else frozen (--head-steps, default 300,\n"
                    "     at --head-learning-rate); skipped when the head was already trained, unless\n"
                    "     --head-steps is given\n"
                    "  3. phase 2: train all weights (--steps at --learning-rate)\n"
                    "  each step masks 15% of the tokens of --batch-size texts (BERT's 80/10/10 rule);\n"
                    "  AdamW, linear warm-up (6%) and decay to 0 in each phase.\n\n"
                    "Runs are reproducible (--seed) and show progress bars on a terminal. Checkpoints go to\n"
                    "OUTPUT.partial/ every --checkpoint-every steps: after an interruption rerun the same\n"
                    "command with --resume. The result is a standard AutoModelForMaskedLM folder\n"
                    "(safetensors, config, tokenizer) plus adapt.json (the recipe, losses and time).",
        epilog="examples:\n"
               "  promptlearn adapt --model minilm --shared-data --output models/minilm-mlm --threads 1\n"
               "  promptlearn adapt --model minilm --shared-data --output models/minilm-mlm --resume --threads 1\n"
               "  promptlearn adapt --model ./my-bert --texts reviews.txt more.csv --column review --steps 500 "
               "--output my-bert-reviews\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    adapt.add_argument("--model", required=True,
                       help="masked LM or encoder: hub id, local folder, or short name minilm (all-MiniLM-L6-v2)")
    adapt_texts = adapt.add_argument_group("unlabelled text (one of)").add_mutually_exclusive_group(required=True)
    adapt_texts.add_argument("--texts", nargs="+", metavar="FILE",
                             help=".txt (one text per line), .csv / .tsv / .jsonl (see --column) files")
    adapt_texts.add_argument("--shared-data", nargs="?", const="", metavar="ROOT",
                             help="the train (and dev) sentences of lm-bff/full/{SST-2,sst-5,mr,cr,subj,trec} and "
                                  "ag_news/train_pool.csv descriptions under ROOT (default: the shared data "
                                  "folder); never a test split")
    adapt.add_argument("--column", help="text column of .csv/.tsv/.jsonl files (default: text, or the only column)")
    adapt.add_argument("--max-texts", type=_positive_int, help="train on a seeded subset of this many texts")
    adapt.add_argument("--output", required=True, help="folder to write the masked LM to")
    adapt_training = adapt.add_argument_group("training")
    adapt_training.add_argument("--head-steps", type=int,
                                help="phase-1 steps, head only (default: 300 when the head is missing, else 0)")
    adapt_training.add_argument("--steps", type=int, default=2000, help="phase-2 steps, all weights (default 2000)")
    adapt_training.add_argument("--learning-rate", type=float, default=1e-4, help="phase-2 peak rate (default 1e-4)")
    adapt_training.add_argument("--head-learning-rate", type=float, default=1e-3,
                                help="phase-1 peak rate (default 1e-3)")
    adapt_training.add_argument("--batch-size", type=_positive_int, default=32, help="texts per step (default 32)")
    adapt_training.add_argument("--max-length", type=_positive_int, default=128,
                                help="tokens per text; longer texts are truncated (default 128)")
    adapt_training.add_argument("--mlm-probability", type=float, default=0.15,
                                help="share of tokens masked (default 0.15)")
    adapt_training.add_argument("--checkpoint-every", type=_positive_int, default=100,
                                help="steps between checkpoints (default 100)")
    adapt_training.add_argument("--seed", type=int, default=0,
                                help="seed of the new head, the text order, the masks and --max-texts (default 0)")
    adapt_training.add_argument("--resume", action="store_true",
                                help="continue an interrupted run from OUTPUT.partial/")
    adapt_training.add_argument("--overwrite", action="store_true",
                                help="replace an existing OUTPUT (and discard an interrupted run's checkpoints)")
    adapt_training.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    adapt_training.add_argument("--threads", type=_positive_int,
                                help="CPU threads for torch (default: torch's choice); on a CPU shared with other "
                                     "jobs, 1 can be many times faster")
    adapt.set_defaults(run=run_adapt)

    search = commands.add_parser(
        "search", help="find templates and label words automatically from a few labelled examples",
        description="Search for prompts (templates and label words) with the model itself, offline;\n"
                    "every candidate is scored on the dev examples.\n\n"
                    "methods (--method):\n"
                    "  labels      label words for one template (--template, default '{{ text }} It was [MASK].'):\n"
                    "              LM-BFF (each class's words with the highest summed log-probability at the\n"
                    "              mask over its training examples, combinations pruned by dev accuracy) and\n"
                    "              PETAL (words ranked by the likelihood ratio p(word | class) / p(word | all))\n"
                    "  infill      templates: a seed pool of patterns plus templates the model writes around\n"
                    "              the label word (a masked LM fills blanks: '<text> _ _ great _'); a causal LM\n"
                    "              cannot fill blanks, so it writes the words between the text and the label\n"
                    "              word instead (templates ending with [MASK])\n"
                    "  autoprompt  templates with trigger words found by AutoPrompt's gradient-guided HotFlip\n"
                    "              search on the frozen model ('<text> w1 w2 w3 [MASK].')\n"
                    "  all         labels, then infill and autoprompt with the best label words, then label\n"
                    "              words again for the best two new templates (the default)\n"
                    "infill and autoprompt use --verbalizer's words, or the best found by a label search first.\n\n"
                    "Scoring: zero-shot and calibrated dev accuracy for every candidate, then short prompt-based\n"
                    "fine-tuning (--train-steps) of the best --n-templates and their dev accuracy. The budget\n"
                    "(--budget-minutes, model loading not counted) is checked between candidates; template\n"
                    "generation stops at 60% of it when training follows. Output in --out: templates/TASK/N.j2,\n"
                    "verbalizers/TASK_N.json (N = rank), report.md and report.json (every candidate, ranked).",
        epilog="examples:\n"
               "  promptlearn search --model models/minilm-mlm --data ../shared/data/lm-bff/k-shot/SST-2/16-13 "
               "--out search/sst2\n"
               "  promptlearn search --model ./my-roberta --train train.csv --dev dev.csv --out search/reviews "
               "--task-name reviews --method labels --template \"{{ text }} All in all, it was [MASK].\"\n"
               "  promptlearn search --model smollm2 --data sst2 --out search/sst2-causal --method infill "
               "--verbalizer sst2 --budget-minutes 5\n"
               "  promptlearn evaluate --model ./my-roberta --template search/sst2/templates/sst2/1.j2 "
               "--verbalizer search/sst2/verbalizers/sst2_1.json --data sst2\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    search_model = search.add_argument_group("model")
    search_model.add_argument("--model", default="smollm2",
                              help="masked or causal LM: hub id, local folder, .gguf file or short name "
                                   "(default smollm2)")
    search_model.add_argument("--gguf-file", help="GGUF file inside --model's folder")
    search_model.add_argument("--batch-size", type=_positive_int, default=16,
                              help="examples per forward pass (default 16)")
    search_model.add_argument("--max-length", type=_positive_int, help="token budget of one prompt")
    search_model.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    search_model.add_argument("--threads", type=_positive_int, help="CPU threads for torch (default: torch's choice)")
    _add_data_options(search)
    search_data = search.add_argument_group("labelled examples")
    search_data.add_argument("--data", help="LM-BFF k-shot folder or task name (sst2, sst2:21): its train and dev "
                                            "splits")
    search_data.add_argument("--train", help="labelled training file (CSV / TSV / JSONL)")
    search_data.add_argument("--dev", help="labelled dev file the candidates are scored on (with --data: default "
                                           "its dev split); it needs at least two classes")
    search_data.add_argument("--label-column", default="label", help="label column of the files (default: label)")
    search_options = search.add_argument_group("search")
    search_options.add_argument("--method", choices=("all", "labels", "infill", "autoprompt"), default="all",
                                help="what to search (see above; default all)")
    search_options.add_argument("--template", help="fixed template for label search (file, shipped name or Jinja "
                                                   "text); default '{{ text }} It was [MASK].'")
    search_options.add_argument("--verbalizer", help="fixed label words for template search (file or shipped name); "
                                                     "default: the best found by label search")
    search_options.add_argument("--n-templates", type=_positive_int, default=3,
                                help="how many prompts to write out (and train briefly; default 3)")
    search_options.add_argument("--budget-minutes", type=float, default=10.0,
                                help="wall-clock budget of the search (default 10)")
    search_options.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    search_options.add_argument("--top-k-words", type=_positive_int, default=10,
                                help="label search: candidate words per class (default 10)")
    search_options.add_argument("--triggers", type=_positive_int, default=3,
                                help="autoprompt: number of trigger words (default 3)")
    search_options.add_argument("--autoprompt-iterations", type=int, default=8,
                                help="autoprompt: HotFlip swaps tried (default 8)")
    search_options.add_argument("--train-steps", type=int, default=30,
                                help="short prompt-based fine-tuning of the top candidates, in steps "
                                     "(default 30; 0: zero-shot scores only)")
    search_options.add_argument("--learning-rate", type=float, default=1e-4,
                                help="learning rate of that training (default 1e-4)")
    search_output = search.add_argument_group("output")
    search_output.add_argument("--out", required=True, help="folder for the templates, verbalizers and reports")
    search_output.add_argument("--task-name", help="names the files (default: from --data, else 'task')")
    search_output.add_argument("--overwrite", action="store_true",
                               help="replace an earlier search's files in --out")
    search.set_defaults(run=run_search)

    templates = commands.add_parser("templates", help="list the shipped templates and verbalizers",
                                    description="List the shipped templates (task/name) and verbalizers.")
    templates.set_defaults(run=run_list)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _columns(pairs: Sequence[str]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise PromptlearnError(f"--column expects FIELD=COLUMN (e.g. text=review), got {pair!r}")
        mapping[field] = column
    return mapping or None


def default_verbalizer(template: str) -> str:
    """For a shipped template ``task/name``: the verbalizer ``task_name`` if shipped, else ``task``."""
    from .resources import shipped_dir
    from .template import _SHIPPED_NAME

    if not _SHIPPED_NAME.match(template) or Path(template).is_file():
        raise PromptlearnError("--verbalizer is required unless --template is a shipped name such as sst2/it_was")
    task, name = template.split("/")
    name = name.removesuffix(".j2")
    folder = shipped_dir("verbalizers")
    return f"{task}_{name}" if (folder / f"{task}_{name}.json").is_file() else task


def _demo_options(args: argparse.Namespace) -> dict[str, Any]:
    """PromptClassifier's demonstration parameters from the options given (--demo-pool read here)."""
    options: dict[str, Any] = {}
    for option, param in (("demos", "demos"), ("demo_selection", "demo_selection"), ("demo_sets", "demo_sets")):
        if getattr(args, option, None) is not None:
            options[param] = getattr(args, option)
    if getattr(args, "chat_template", False):
        options["chat_template"] = True
    if getattr(args, "demo_pool", None):
        from .data import load_data

        label_column = getattr(args, "label_column", None) or "label"
        pool_x, pool_y = load_data(args.demo_pool, "train", columns=_columns(args.column), label_column=label_column)
        if pool_y is None:
            raise PromptlearnError(f"--demo-pool {args.demo_pool} has no labels (looked for column {label_column!r})")
        options["demo_pool"] = (pool_x, pool_y)
    return options


def _classifier(args: argparse.Namespace, **training: Any) -> Any:
    from .classifier import PromptClassifier

    if getattr(args, "model_dir", None):
        from .ensemble import PromptEnsemble, saved_class

        saved = saved_class(args.model_dir)
        demos = _demo_options(args)
        if demos and saved is not PromptClassifier:
            raise PromptlearnError(f"--demos, --demo-pool, --demo-selection, --demo-sets and --chat-template apply to "
                                   f"a single prompt, but {args.model_dir} holds a {saved.__name__}")
        if saved is PromptEnsemble:
            ensemble = PromptEnsemble.load(args.model_dir, batch_size=args.batch_size, device=args.device,
                                           show_progress=None)
            return ensemble.set_params(calibrate_members=args.calibrate or ensemble.calibrate_members)
        if saved is not PromptClassifier:  # a distilled student (FineTuneClassifier) or a probe
            if args.calibrate:
                raise PromptlearnError(f"--calibrate needs a prompt, but {args.model_dir} holds a {saved.__name__}")
            return saved.load(args.model_dir, batch_size=args.batch_size, device=args.device, show_progress=None)
        classifier = PromptClassifier.load(args.model_dir, batch_size=args.batch_size, device=args.device,
                                           show_progress=None)
        return classifier.set_params(calibrate=args.calibrate or classifier.calibrate, **demos)
    if not args.template:
        raise PromptlearnError("--template is required (a file, a shipped name such as sst2/it_was, or Jinja text)")
    return PromptClassifier(
        model=args.model, template=args.template, verbalizer=args.verbalizer or default_verbalizer(args.template),
        calibrate=args.calibrate, multi_token=args.multi_token, after_mask=args.after_mask,
        aggregation=args.aggregation, shortenable=args.shorten, batch_size=args.batch_size,
        max_length=args.max_length, device=args.device, gguf_file=args.gguf_file,
        show_progress=None, **training, **_demo_options(args),
    )


def run_classify(args: argparse.Namespace) -> int:
    from .data import read_examples

    if args.text and args.input:
        raise PromptlearnError("give texts with --text or a file with --input, not both")
    if not args.text and not args.input:
        raise PromptlearnError("nothing to classify: give texts with --text (repeatable) or a file with --input "
                               "(- for stdin)")
    columns = _columns(args.column)
    output_format = _output_format(args.output)
    classifier = _classifier(args)
    template = classifier.template_
    classifier.verbalizer_  # validate before loading the model
    if args.text:
        if len(template.fields) != 1:
            raise PromptlearnError(f"--text fills one field, but the template uses {sorted(template.fields)}; "
                                   "use --input with those columns")
        (field,) = template.fields
        examples = [{field: text} for text in args.text]
    else:
        examples, _ = read_examples(args.input, columns=columns, label_column=None, fmt=args.fmt)
    probabilities = classifier.predict_proba(examples)
    classes = list(classifier.classes_)
    header = ["label", *(f"p({c})" for c in classes), *sorted(template.fields)]
    records = []
    for example, probs in zip(examples, probabilities):
        record = {"label": classes[int(probs.argmax())]}
        record.update({f"p({c})": round(float(p), 6) for c, p in zip(classes, probs)})
        record.update({k: v for k, v in example.items() if k not in record})
        records.append(record)
    if args.output is None:
        _dump(records, sys.stdout, output_format, header)
    else:
        atomic_write(args.output, lambda handle: _dump(records, handle, output_format, header))
        print(f"wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    return 0


def _output_format(output: str | None) -> str:
    """The format of an --output file from its extension (checked before any work is done)."""
    suffix = Path(output).suffix.lower() if output else ".tsv"
    if suffix not in (".csv", ".tsv", ".jsonl"):
        raise PromptlearnError(f"--output must end in .csv, .tsv or .jsonl, got {output}")
    _check_output_path(output)
    return suffix


def _check_output_path(output: str | None) -> None:
    """Fail before the long work when --output cannot be written: a folder, or under a file."""
    if not output:
        return
    path = Path(output)
    if path.is_dir():
        raise PromptlearnError(f"--output {output} is a folder; name a file")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise PromptlearnError(f"cannot write {output}: {parent} is a file, not a folder")


def _dump(records: list[dict[str, Any]], handle: Any, suffix: str, header: list[str]) -> None:
    if suffix == ".jsonl":
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    fieldnames = list(dict.fromkeys(header + [k for r in records for k in r]))
    writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter="\t" if suffix == ".tsv" else ",",
                            lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)


def run_evaluate(args: argparse.Namespace) -> int:
    from .data import load_data, subsample
    from .metrics import classification_report, format_report

    columns = _columns(args.column)
    _check_output_path(args.output)
    classifier = _classifier(args)
    from .classifier import PromptClassifier

    prompt = isinstance(classifier, PromptClassifier)  # else a saved ensemble or distilled student (--model-dir)
    if prompt:
        classifier.template_
        verbalizer = classifier.verbalizer_
    examples, labels = load_data(args.data, args.split, columns=columns, label_column=args.label_column, fmt=args.fmt)
    if labels is None:
        raise PromptlearnError(f"{args.data} has no labels (looked for column {args.label_column!r}); "
                               "pass --label-column")
    if not examples:
        raise PromptlearnError(f"{args.data} has no examples to evaluate")
    total = len(examples)
    subset = bool(args.limit) and args.limit < total
    if subset:
        examples, labels = subsample(examples, labels, args.limit, args.seed)
    if prompt:
        truth = verbalizer.label_indices(labels)
    else:
        truth = (classifier.label_indices(labels) if hasattr(classifier, "label_indices")
                 else classifier._label_indices(labels))
    start = time.perf_counter()
    if hasattr(classifier, "predict_with_proba"):  # an ensemble: vote ties are broken by the mean probability
        predicted, probabilities = classifier.predict_with_proba(examples)
    else:
        probabilities = classifier.predict_proba(examples)
        predicted = probabilities.argmax(axis=1)
    seconds = time.perf_counter() - start
    report = classification_report(truth, predicted, list(classifier.classes_))
    members = getattr(classifier, "members", [])  # an ensemble's
    report.update({
        "data": str(args.data), "split": args.split, "n_examples": len(examples), "n_available": total,
        "subset_seed": args.seed if subset else None, "model": args.model_dir or args.model,
        "template": (classifier.template_.source if prompt
                     else [m.template_.source for m in members if hasattr(m, "template_")] or None),
        "verbalizer": (verbalizer.to_dict() if prompt
                       else [m.verbalizer_.to_dict() for m in members if hasattr(m, "verbalizer_")] or None),
        "calibrate": args.calibrate, "seconds": round(seconds, 2),
        **({"demos": classifier.demos, "demo_selection": classifier.demo_selection, "demo_sets": classifier.demo_sets,
            "chat_template": classifier.chat_template} if prompt and classifier._uses_context() else {}),
        "examples_per_second": round(len(examples) / seconds, 2) if seconds > 0 else None,
    })
    print(format_report(report))
    if args.output:
        atomic_write_text(args.output, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .data import load_data, read_examples

    output = Path(args.output)
    finished = (output / "config.json").exists()
    if output.exists() and not args.overwrite and (finished or not args.resume):
        hint = "" if finished else " (it holds an unfinished run: add --resume to continue it)"
        raise PromptlearnError(f"--output {output} already exists{hint}; pass --overwrite to replace it")
    if output.exists() and not output.is_dir():
        raise PromptlearnError(f"--output {output} is a file, not a folder")
    if bool(args.data) == bool(args.train):
        raise PromptlearnError("give the training data with --data (an LM-BFF folder or task) or --train FILE")
    prompts = _ensemble_prompts(args)  # None: one prompt (args.template / args.verbalizer become plain strings)
    columns = _columns(args.column)
    options = dict(columns=columns, label_column=args.label_column, fmt=args.fmt)
    if args.data:
        train_x, train_y = load_data(args.data, "train", **options)
        dev_x, dev_y = load_data(args.dev, "test", **options) if args.dev else load_data(args.data, "dev", **options)
    else:
        train_x, train_y = load_data(args.train, "train", **options)
        dev_x, dev_y = load_data(args.dev, "test", **options) if args.dev else (None, None)
    if train_y is None or (dev_x is not None and dev_y is None):
        raise PromptlearnError(f"the training and dev data need labels (column {args.label_column!r})")
    unlabeled = read_examples(args.unlabeled, columns=columns, label_column=None, fmt=args.fmt)[0] \
        if args.unlabeled else None
    if prompts is not None:
        return _train_ensemble(args, prompts, output, (train_x, train_y),
                               (dev_x, dev_y) if dev_x is not None else None, unlabeled)
    classifier = _classifier(args, checkpoint_dir=str(output), **_training_options(args), **_source_options(args))
    classifier.template_, classifier.verbalizer_  # validate before loading the model
    start = time.perf_counter()
    classifier.fit(train_x, train_y, unlabeled=unlabeled,
                   dev=(dev_x, dev_y) if dev_x is not None else None, resume=args.resume)
    seconds = time.perf_counter() - start
    classifier.set_params(checkpoint_dir=None)
    classifier.save(output, overwrite=True)
    result = classifier.training_result_
    summary = {"output": str(output), "train_examples": len(train_x), "steps": result.steps,
               "seconds": round(seconds, 1), "best_step": result.best_step, "dev_accuracy": result.best_metric,
               "stopped_early": result.stopped_early}
    print(json.dumps(summary))
    return 0


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    """PromptClassifier's ``source`` and ``source_options`` from `promptlearn train`'s --source options."""
    source = getattr(args, "source", "manual")
    options: dict[str, Any] = {}
    for dest, (sources, option) in SOURCE_FLAGS.items():
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        if source not in sources:
            flag = "--" + dest.replace("_", "-")
            raise PromptlearnError(f"{flag} applies to --source {' or '.join(sources)}, not {source}")
        options[option] = [t.strip() for t in value.split(",") if t.strip()] if dest == "lora_targets" else value
    if options.get("init_text") and "init" not in options:
        options["init"] = "text"
    return {"source": source, "source_options": options or None} if source != "manual" else {}


def _training_options(args: argparse.Namespace) -> dict[str, Any]:
    """PromptClassifier's training parameters from `promptlearn train`'s options."""
    learning_rate = args.learning_rate
    if learning_rate is None:
        from .prompts import LEARNING_RATES

        learning_rate = LEARNING_RATES[getattr(args, "source", "manual")]
    return dict(learning_rate=learning_rate, epochs=args.epochs, max_steps=args.max_steps,
                train_batch_size=args.train_batch_size, gradient_accumulation_steps=args.gradient_accumulation,
                warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay, trainable=args.trainable,
                mlm_weight=args.mlm_weight, eval_every=args.eval_every, patience=args.patience, seed=args.seed)


def _ensemble_prompts(args: argparse.Namespace) -> list[tuple[str, str | None]] | None:
    """(template, verbalizer) of every prompt of an ensemble run (several --template, --ensemble, --distill or
    --ipet-generations), checked before any data or model is loaded; None for a single-prompt run, whose
    args.template / args.verbalizer then become the plain strings the other commands use."""
    templates, verbalizers = list(args.template), list(args.verbalizer or [])
    if len(verbalizers) not in (0, 1, len(templates)):
        raise PromptlearnError(f"{len(templates)} --template but {len(verbalizers)} --verbalizer: give one "
                               "verbalizer for every template, or one per template in the same order")
    if not (len(templates) > 1 or args.ensemble or args.distill or args.ipet_generations):
        args.template, args.verbalizer = templates[0], (verbalizers[0] if verbalizers else None)
        return None
    if args.resume:
        raise PromptlearnError("--resume continues a single-prompt run; ensembles, distillation and iPET start "
                               "over (pass --overwrite)")
    if (args.distill or args.ipet_generations) and not args.unlabeled:
        raise PromptlearnError("--distill and --ipet-generations need unlabelled examples: --unlabeled FILE")
    if args.ipet_generations < 0:
        raise PromptlearnError(f"--ipet-generations must be >= 0, got {args.ipet_generations}")
    if args.ipet_generations and len(templates) < 2:
        raise PromptlearnError("iPET needs at least two prompts: repeat --template")
    if not args.temperature > 0:
        raise PromptlearnError(f"--temperature must be > 0, got {args.temperature}")
    if len(verbalizers) <= 1:
        verbalizers = verbalizers * len(templates) or [None] * len(templates)
    return [(t, v or default_verbalizer(t)) for t, v in zip(templates, verbalizers)]


def _train_ensemble(args: argparse.Namespace, prompts: list[tuple[str, str | None]], output: Path,
                    train: tuple[Any, Any], dev: tuple[Any, Any] | None, unlabeled: Any) -> int:
    """PET with several prompts (a PromptEnsemble), optionally iPET, optionally distilled into one student."""
    from .ensemble import PromptEnsemble

    def prompt_classifier(template: str, verbalizer: str | None) -> Any:
        member = _classifier(argparse.Namespace(**{**vars(args), "template": template, "verbalizer": verbalizer}),
                             **_training_options(args), **_source_options(args))
        member.template_, member.verbalizer_  # validate before loading the model
        return member

    members = [prompt_classifier(template, verbalizer) for template, verbalizer in prompts]
    ensemble = PromptEnsemble(members, combine=args.ensemble or "mean", ipet_generations=args.ipet_generations,
                              seed=args.seed)
    student = None
    if args.distill:
        student = prompt_classifier(*prompts[0]) if args.student == "prompt" else _finetune_student(args)
    start = time.perf_counter()
    ensemble.fit(*train, unlabeled=unlabeled, dev=dev)
    summary: dict[str, Any] = {
        "output": str(output), "train_examples": len(train[0]), "members": len(members), "ensemble": ensemble.combine,
        "weights": [round(float(w), 6) for w in ensemble.weights_],
        "steps": [getattr(getattr(m, "training_result_", None), "steps", None) for m in ensemble.members_],
        "dev_accuracy": ensemble.score(*dev) if dev is not None else None,
    }
    if args.ipet_generations:
        summary["ipet_train_sizes"] = [generation["train_sizes"] for generation in ensemble.ipet_history_]
    if student is not None:
        student = ensemble.distill(unlabeled, student, temperature=args.temperature, dev=dev)
        student.save(output, overwrite=True)
        summary.update(student=type(student).__name__, distilled_examples=len(unlabeled),
                       student_dev_accuracy=student.score(*dev) if dev is not None else None)
    else:
        ensemble.save(output, overwrite=True)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary))
    return 0


def _finetune_student(args: argparse.Namespace) -> Any:
    """The distilled sequence classifier: --model with a new head, trained with the same hyper-parameters."""
    from .baselines import FineTuneClassifier

    options = {k: v for k, v in _training_options(args).items() if k not in ("trainable", "mlm_weight")}
    options["learning_rate"] = args.learning_rate if args.learning_rate is not None else 1e-5  # full fine-tuning
    if args.max_length:
        options["max_length"] = args.max_length
    return FineTuneClassifier(args.model, batch_size=args.batch_size, device=args.device, show_progress=None,
                              **options)


def run_adapt(args: argparse.Namespace) -> int:
    from .adapt import _subset, adapt, read_texts, shared_unlabelled_texts

    if Path(args.output).exists() and not args.overwrite:
        raise PromptlearnError(f"{args.output} already exists; choose another --output or pass --overwrite")
    if args.texts:
        texts = read_texts(args.texts, column=args.column, max_texts=args.max_texts, seed=args.seed)
        source = " ".join(args.texts)
    else:
        texts = _subset(shared_unlabelled_texts(args.shared_data or None), args.max_texts, args.seed)
        source = "the shared data (train/dev splits, no test split)"
    print(f"adapting {args.model} on {len(texts)} texts from {source}", file=sys.stderr)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        summary = adapt(args.model, texts, args.output, head_steps=args.head_steps, steps=args.steps,
                        learning_rate=args.learning_rate, head_learning_rate=args.head_learning_rate,
                        batch_size=args.batch_size, max_length=args.max_length, mlm_probability=args.mlm_probability,
                        checkpoint_every=args.checkpoint_every, seed=args.seed, resume=args.resume,
                        overwrite=args.overwrite, device=args.device)
    except KeyboardInterrupt:
        print(f"promptlearn: interrupted; the checkpoints are in {args.output}.partial: rerun the same command with "
              "--resume to continue", file=sys.stderr)
        return 130
    phases = [f"{label}: {summary[count]} steps, loss {summary[f'{key}_first_loss']} -> {summary[f'{key}_loss']} "
              f"({summary[f'{key}_seconds']} s)"
              for key, count, label in (("head", "head_steps", "head"), ("full", "steps", "all weights"))
              if summary[count]]
    print(f"wrote {args.output}: {'; '.join(phases)}; {summary['seconds']} s in all", file=sys.stderr)
    return 0


def _search_task_name(args: argparse.Namespace) -> str:
    import re

    from .data import task_id

    if args.task_name:
        return args.task_name
    if args.data:
        path = Path(args.data)
        for candidate in ((path.parent.name, path.name) if path.is_dir() else (args.data.split(":")[0],)):
            try:
                return task_id(candidate)
            except PromptlearnError:
                continue
        return re.sub(r"[^A-Za-z0-9_\-]+", "_", path.name) or "task"
    return "task"


def run_search(args: argparse.Namespace) -> int:
    from .data import load_data
    from .search import PromptSearch
    from .search.results import check_task_name

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PromptlearnError(f"--out {out} is a file, not a folder")
    if (out / "report.json").exists() and not args.overwrite:
        raise PromptlearnError(f"--out {out} already holds a search report; pass --overwrite to replace it")
    if bool(args.data) == bool(args.train):
        raise PromptlearnError("give the labelled examples with --data (an LM-BFF folder or task) or --train FILE")
    if args.train and not args.dev:
        raise PromptlearnError("--dev FILE is required with --train: the search scores its candidates on it")
    if args.budget_minutes < 0:
        raise PromptlearnError(f"--budget-minutes must be >= 0, got {args.budget_minutes}")
    task = check_task_name(_search_task_name(args))
    options = dict(columns=_columns(args.column), label_column=args.label_column, fmt=args.fmt)
    train_x, train_y = load_data(args.data or args.train, "train", **options)
    dev_x, dev_y = load_data(args.dev, "test", **options) if args.dev else load_data(args.data, "dev", **options)
    if train_y is None or dev_y is None:
        raise PromptlearnError(f"the training and dev data need labels (column {args.label_column!r})")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    search = PromptSearch(
        model=args.model, gguf_file=args.gguf_file, device=args.device, batch_size=args.batch_size,
        max_length=args.max_length, method=args.method, template=args.template, verbalizer=args.verbalizer,
        n_templates=args.n_templates, budget_minutes=args.budget_minutes, seed=args.seed,
        top_k_words=args.top_k_words, n_triggers=args.triggers, autoprompt_iterations=args.autoprompt_iterations,
        train_steps=args.train_steps, learning_rate=args.learning_rate, show_progress=None)
    print(f"searching prompts ({args.method}) for {task} with {args.model} on {len(train_x)} training and "
          f"{len(dev_x)} dev examples, budget {args.budget_minutes:g} min", file=sys.stderr)
    search.fit(train_x, train_y, dev=(dev_x, dev_y))
    search.write(out, task_name=task, overwrite=args.overwrite)
    result = search.result_
    print(f"{len(result.candidates)} candidates scored in {result.seconds:.1f} s; best {args.n_templates} in {out}:")
    for rank, candidate in enumerate(result.best(args.n_templates), start=1):
        trained = f"  trained {100 * candidate.trained:.1f}" if candidate.trained is not None else ""
        words = "; ".join(f"{c}: {', '.join(w)}" for c, w in candidate.label_words.items())
        print(f"{rank}. zero-shot {100 * candidate.zero_shot:.1f}  calibrated {100 * candidate.calibrated:.1f}"
              f"{trained}  {json.dumps(candidate.template, ensure_ascii=False)}  ({words})")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from .template import list_shipped as templates
    from .verbalizer import list_shipped as verbalizers

    print("templates:   " + " ".join(templates()))
    print("verbalizers: " + " ".join(verbalizers()))
    return 0


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        import transformers

        transformers.utils.logging.set_verbosity(logging.ERROR if verbosity == 0 else level)
        if not sys.stderr.isatty():
            transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except PromptlearnError as exc:
        print(f"promptlearn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("promptlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
