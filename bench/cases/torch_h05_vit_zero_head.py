"""Trap (BENCHMARK-CASES section 4): a small ViT whose classifier head is zero-initialized on purpose
(as torchvision's vit_b_16 does) and whose class token starts at zero. 8x8 digits cut into 2x2
patches, 2 pre-norm encoder layers."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "torchvision vit_b_16 zero head / class token (BENCHMARK-CASES section 4 traps)",
    "gate": True,
}


class TinyViT(nn.Module):
    def __init__(self, d=48, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(1, d, kernel_size=2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 17, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=96, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        p = self.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(len(x), -1, -1), p], dim=1) + self.pos
        return self.head(self.norm(self.encoder(h))[:, 0])


def build_model():
    return TinyViT()


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
