"""Small torch building blocks shared by the torch cases (Keras-2-style initializers, dense stacks,
a few epochs of training). Case files import it by name (``import _torchkit as tk``)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU,
    "softmax": lambda: nn.Softmax(dim=-1), "linear": nn.Identity,
}


def init_(weight: torch.Tensor, how: str) -> None:
    """Initialize a weight in place the way a Keras initializer would.

    ``he_uniform`` (Keras: U(+-sqrt(6/fan_in))), ``he_normal``, ``glorot_uniform``,
    ``uniform005`` (Keras 2's RandomUniform(-0.05, 0.05)), ``normal005`` (Keras 2's
    ``init='normal'``), ``normal1`` (N(0, 1)), ``zeros``, ``const:<v>``, ``normal:<std>``,
    ``torch`` (leave PyTorch's default).
    """
    with torch.no_grad():
        if how == "torch":
            return
        if how == "he_uniform":
            nn.init.kaiming_uniform_(weight, nonlinearity="relu")
        elif how == "he_normal":
            nn.init.kaiming_normal_(weight, nonlinearity="relu")
        elif how == "glorot_uniform":
            nn.init.xavier_uniform_(weight)
        elif how == "uniform005":
            nn.init.uniform_(weight, -0.05, 0.05)
        elif how == "normal005":
            nn.init.normal_(weight, 0.0, 0.05)
        elif how == "normal1":
            nn.init.normal_(weight, 0.0, 1.0)
        elif how == "zeros":
            nn.init.zeros_(weight)
        elif how.startswith("const:"):
            nn.init.constant_(weight, float(how.split(":", 1)[1]))
        elif how.startswith("normal:"):
            nn.init.normal_(weight, 0.0, float(how.split(":", 1)[1]))
        else:
            raise ValueError(how)


def dense_stack(sizes: list[int], act: str, init: str = "he_uniform", out_act: str | None = None,
                out_init: str | None = None, bias: float = 0.0) -> nn.Sequential:
    """Keras-style MLP ``sizes[0] -> ... -> sizes[-1]``: Linear + ``act`` per hidden layer, then
    Linear + ``out_act`` (no module for ``None``/``linear``). Biases start at ``bias``."""
    mods: list[nn.Module] = []
    n = len(sizes) - 1
    for i in range(n):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        init_(lin.weight, out_init if (i == n - 1 and out_init) else init)
        with torch.no_grad():
            lin.bias.fill_(bias)
        mods.append(lin)
        a = act if i < n - 1 else out_act
        if a and a != "linear":
            mods.append(ACTS[a]())
    return nn.Sequential(*mods)


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, loss_fn: Callable, *, opt: str = "adam", lr: float = 1e-3,
        epochs: int = 5, batch: int = 32, seed: int = 0) -> nn.Module:
    """A few epochs of minibatch training (shuffled with a fixed numpy seed).

    Plain SGD or Adam (beta 0.9/0.999, eps 1e-8) written out here rather than ``torch.optim``: the
    first ``torch.optim`` step of a process imports TorchDynamo, which costs ~9 s on a 2-core machine.
    """
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    params = [p for p in model.parameters() if p.requires_grad]
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    rng = np.random.default_rng(seed)
    model.train()
    t = 0
    for _ in range(epochs):
        idx = rng.permutation(len(xt))
        for s in range(0, len(idx), batch):
            b = torch.as_tensor(idx[s:s + batch])
            loss = loss_fn(model(xt[b]), yt[b])
            grads = torch.autograd.grad(loss, params)
            t += 1
            with torch.no_grad():
                for p, g, a, v in zip(params, grads, m1, m2):
                    if opt == "sgd":
                        p -= lr * g
                        continue
                    a.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    p -= lr * (a / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
    return model


def he_std(fan_in: int) -> float:
    return math.sqrt(2.0 / fan_in)
