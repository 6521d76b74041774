"""Discrete search for prompts: label words (LM-BFF, PETAL), templates (seed pool, infilling with the
model itself, AutoPrompt's HotFlip triggers), scored zero-shot and after short training on dev examples.

``PromptSearch(model, method=...).fit(X, y, dev=(X_dev, y_dev))`` runs the search (see
:mod:`promptlearn.applications.search.core`); ``write_results`` / ``PromptSearch.write`` write the best templates as
Jinja files, their label words as verbalizer JSON, and a ranked report (Markdown and JSON).
"""

from __future__ import annotations

from .autoprompt import HotFlipResult, hotflip, trigger_template
from .core import METHODS, PromptSearch
from .labels import LabelSearch, search_label_words
from .results import Candidate, SearchResult, write_results
from .templates import infill_causal, infill_masked, seed_templates

__all__ = ["METHODS", "Candidate", "HotFlipResult", "LabelSearch", "PromptSearch", "SearchResult", "hotflip",
           "infill_causal", "infill_masked", "search_label_words", "seed_templates", "trigger_template",
           "write_results"]
