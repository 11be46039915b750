"""Healthy control: Hugging Face ``GPT2LMHeadModel`` from a small config (2 layers, 64 wide,
vocabulary 500), causal-LM loss computed by the model from ``labels`` (tied input/output
embeddings, pre-LayerNorm residual blocks)."""

import _benchdata as bd
import torch
from transformers import GPT2Config, GPT2LMHeadModel

EXPECT = {
    "raise": [],
    "source": "Hugging Face transformers GPT-2 from a config (BENCHMARK-CASES section 4)",
}


def build_model():
    cfg = GPT2Config(vocab_size=500, n_embd=64, n_layer=2, n_head=4, n_positions=64, bos_token_id=0,
                     eos_token_id=0)
    return GPT2LMHeadModel(cfg)


def sample_batch():
    x, _ = bd.tokens()
    ids = torch.from_numpy(x)
    return {"input_ids": ids, "labels": ids}
