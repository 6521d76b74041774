"""One prediction's flow (PromptPipeline), demonstrations, the training objective and the Trainer."""
