"""Keras rows for ``bench/bench_check.py``: cost of ``netdoctor.check`` vs one plain training step.

``rows()`` measures, on the current Keras backend (TensorFlow unless ``KERAS_BACKEND`` says
otherwise), for an MLP (784-512-512-10) and a small CNN (2 conv+BN, 32x32) at batch 256:
the median time of one plain forward+backward under the same gradient tape the adapter uses
(``_keras_grad.grad_fn``, gradients copied to the host like the adapter does) and the median
time of ``netdoctor.check(model, x, y, loss_fn=...)``, run interleaved so that load changes hit
both (after a second of warm-up, for at least two seconds and ``repeats`` pairs); their ratio (target: at most
1.5x). For keras.applications MobileNetV2 (``weights=None``, 96x96, batch 8) it gives the same two numbers
(median of at least 5 pairs) plus the wall time of the first (cold) check. Importing TensorFlow
and building the models are excluded. Run ``python bench/keras_rows.py`` to print them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from bench_check import MIN_S, interleaved_medians  # bench/ is on sys.path: run as a script, or loaded by bench_check

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _cases(batch: int) -> list[tuple[str, Any, Any, Any]]:
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    layers = keras.layers
    mlp = keras.Sequential([
        keras.Input((784,)), layers.Dense(512, activation="relu"), layers.Dense(512, activation="relu"),
        layers.Dense(10),
    ], name="mlp")
    cnn = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(32, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.25), layers.Dense(128, activation="relu"), layers.Dense(10),
    ], name="cnn")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, size=(batch,))
    return [
        ("MLP 784-512-512-10", mlp, rng.standard_normal((batch, 784)).astype("float32"), y),
        ("CNN 2 conv+BN, 32x32", cnn, rng.standard_normal((batch, 32, 32, 3)).astype("float32"), y),
    ]


def _plain_step(model: Any, x: Any, y: Any, loss_fn: Any) -> Callable[[], Any]:
    import keras

    from netdoctor.adapters.keras.grad import grad_fn

    gfn = grad_fn(keras.backend.backend())
    xt, yt = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    variables = list(model.trainable_variables)

    def step() -> Any:
        return gfn(lambda pause: (loss_fn(yt, model(xt, training=True)), None), variables)

    return step


def _row(name: str, model: Any, x: Any, y: Any, loss_fn: Any, repeats: int,
         clock: Callable[[], float] = time.perf_counter, min_s: float = MIN_S) -> dict[str, Any]:
    import netdoctor

    plain, check = interleaved_medians([_plain_step(model, x, y, loss_fn),
                                        lambda: netdoctor.check(model, x, y, loss_fn=loss_fn)],
                                       repeats, clock=clock, min_s=min_s)
    return {"framework": "keras", "model": name, "plain_s": plain, "check_s": check, "ratio": check / plain}


def rows(repeats: int = 7, batch: int = 256, clock: Callable[[], float] = time.perf_counter,
         min_s: float = MIN_S) -> list[dict[str, Any]]:
    """Benchmark rows: ``{"framework", "model", "plain_s", "check_s", "ratio"}`` (+ extras).

    ``clock`` times the pairs (``time.process_time`` for CPU time); the cold first check is wall time.
    """
    import keras
    import numpy as np

    import netdoctor

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    out = [_row(name, model, x, y, ce, repeats, clock, min_s) for name, model, x, y in _cases(batch)]

    t0 = time.perf_counter()
    net = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(8, 96, 96, 3)).astype("float32")
    y = rng.integers(0, 1000, size=(8,))
    cce = keras.losses.SparseCategoricalCrossentropy()
    t0 = time.perf_counter()
    report = netdoctor.check(net, x, y, loss_fn=cce)
    first = time.perf_counter() - t0
    row = _row("keras.applications MobileNetV2 96x96, batch 8", net, x, y, cce, max(5, repeats // 2), clock, min_s)
    row.update(first_check_s=first, build_s=build, findings=len(report.findings),
               errors=report.count("error"))
    out.append(row)
    return out


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    import sys

    for r in rows():
        extra = {k: v for k, v in r.items() if k not in ("framework", "model", "plain_s", "check_s", "ratio")}
        sys.stdout.write(f"{r['model']:46s} plain {r['plain_s'] * 1000:7.1f} ms  check {r['check_s'] * 1000:7.1f} ms"
                         f"  {r['ratio']:5.2f}x  {extra}\n")
