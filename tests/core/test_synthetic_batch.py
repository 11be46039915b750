"""The size of a synthetic probe batch: smaller for large inputs, capped by --max-samples."""

from __future__ import annotations

import pytest

from netdoctor.adapters._common import SYNTHETIC_BATCH, SYNTHETIC_MIN_BATCH, synthetic_batch


@pytest.mark.parametrize(
    ("sample_size", "max_samples", "batch"),
    [
        (4, 256, SYNTHETIC_BATCH),            # a tabular row: the full synthetic batch
        (3 * 32 * 32, 256, 64),               # CIFAR-size images: still 64
        (3 * 96 * 96, 256, 37),               # 2**20 // 27648
        (3 * 224 * 224, 256, SYNTHETIC_MIN_BATCH),  # ImageNet-size: the floor the unit statistics need
        (3 * 512 * 512, 256, SYNTHETIC_MIN_BATCH),
        (4, 4, 4),                            # --max-samples caps synthetic batches too
        (3 * 224 * 224, 8, 8),                # ... also below the floor
        (3 * 96 * 96, 1, 1),
        (0, 256, SYNTHETIC_BATCH),
    ],
)
def test_synthetic_batch(sample_size, max_samples, batch):
    assert synthetic_batch(sample_size, max_samples) == batch


def test_torch_synthetic_batch_follows_input_size_and_max_samples():
    torch = pytest.importorskip("torch")
    from netdoctor.adapters.torch.io import synthetic_inputs

    cpu = torch.device("cpu")
    big = synthetic_inputs((3, 224, 224), cpu, torch.float32, 0, 256)
    assert big.batch_size == 16 and tuple(big.args[0].shape) == (16, 3, 224, 224) and big.synthetic
    two = synthetic_inputs([(3, 96, 96), (3, 96, 96)], cpu, torch.float32, 0, 256)  # the inputs of a sample add up
    assert [tuple(a.shape) for a in two.args] == [(18, 3, 96, 96), (18, 3, 96, 96)]
    assert synthetic_inputs((4,), cpu, torch.float32, 0, 5).batch_size == 5


def test_keras_synthetic_batch_follows_input_size_and_max_samples():
    pytest.importorskip("keras")
    import keras

    import netdoctor
    from netdoctor.snapshot import ProbeSettings

    inp = keras.Input((128, 128, 3))
    h = keras.layers.Conv2D(2, 3, strides=4, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    report = netdoctor.check(model, select=["ND201"])
    assert report.targets[0].synthetic_inputs and report.targets[0].batch_size == 2**20 // (128 * 128 * 3)  # 21
    capped = netdoctor.check(model, select=["ND201"], settings=ProbeSettings(max_samples=3))
    assert capped.targets[0].batch_size == 3
