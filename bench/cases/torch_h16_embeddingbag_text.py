"""Trap (catalogue ND101): integer token ids feeding an ``nn.EmbeddingBag`` are not features, however
large the ids are (vocabulary 5000). fastText-style classifier, two hidden layers."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "netdoctor catalogue ND101 ('integer token ids feeding an embedding are not features')",
    "gate": True,
}


class BagClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.EmbeddingBag(5000, 32, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, ids):
        return self.mlp(self.emb(ids))


def build_model():
    return BagClassifier()


def sample_batch():
    x, y = bd.tokens(n=128, seq=24, vocab=5000, classes=4)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
