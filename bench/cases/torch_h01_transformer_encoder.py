"""Healthy control: ``nn.TransformerEncoder`` text classifier (token embedding + learned positions,
2 pre-norm layers, mean pooling, linear head) on synthetic token ids. Residual connections,
LayerNorm, attention and integer inputs: none of it is a fault."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "torch.nn.TransformerEncoder (BENCHMARK-CASES section 4: real-network controls)",
    "seeds": 2,
    "gate": True,
}


class TextTransformer(nn.Module):
    def __init__(self, vocab=500, d=64, seq=16, classes=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=128, dropout=0.1, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, ids):
        h = self.encoder(self.tok(ids) + self.pos)
        return self.head(self.norm(h).mean(dim=1))


def build_model():
    return TextTransformer()


def sample_batch():
    x, y = bd.tokens()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
