"""A tiny sentence-transformers CrossEncoder built in a test's folder: nothing downloaded, nothing committed.

A two-layer BERT with 32 hidden units over a WordPiece vocabulary of the toy corpus's words and single
letters, saved with its tokenizer so that `CrossEncoder(folder)` loads it. `bias` makes every pair's
logit exactly that (the classifier's weights zeroed); without it the weights are random but seeded, and
wide enough (`initializer_range`) for the logits of different pairs to differ clearly.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

EXTRA_WORDS = "what which who when where how do does did is are the a of and to in for eat chase need".split()


def build_cross_encoder(folder: Path, texts: list[str] = (), bias: float | None = None, seed: int = 0) -> Path:
    """The model folder `folder`, holding a tiny cross-encoder whose vocabulary covers `texts`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    from transformers.utils import logging as hf_logging

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())} | set(EXTRA_WORDS))
    vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + list(string.ascii_lowercase)
             + [f"##{c}" for c in string.ascii_lowercase] + list(string.digits) + list(string.punctuation))
    vocab = list(dict.fromkeys(vocab))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1, initializer_range=0.5)
    model = BertForSequenceClassification(config)
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.fill_(bias)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(folder)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), model_max_length=128).save_pretrained(folder)
    return folder
