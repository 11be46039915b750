"""Healthy control: Hugging Face ``BertForSequenceClassification`` built from a small config (no
download): 2 layers, hidden 64, 4 heads, vocabulary 500; cross-entropy on the logits. BERT's
N(0, 0.02) init, LayerNorm, residuals, GELU, token ids: none of it is a fault."""

import _benchdata as bd
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

EXPECT = {
    "raise": [],
    "source": "Hugging Face transformers BERT from a config (BENCHMARK-CASES section 4)",
}


def build_model():
    cfg = BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(cfg)


def sample_batch():
    x, y = bd.tokens()
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(output, target):
    return nn.functional.cross_entropy(output.logits, target)
