"""Corpora and batch sources: text (prepare, token files, causal windows), masked LM (BERT's
picks), pairs (source/target sequences) and the dates corpus.

Above the tokenizers, below the models."""
