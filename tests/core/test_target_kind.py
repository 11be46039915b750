"""What kind of targets an array holds (class ids, one-hot rows, binary or float targets)."""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.adapters._common import target_kind


@pytest.mark.parametrize("values,kind", [
    (np.array([0, 2, 1, 2]), "class_index"),
    (np.array([[1], [0], [3]]), "class_index"),  # Keras' (N, 1) class ids
    (np.array([0, 1, 1, 0]), "class_index"),  # integer 0/1 ids are class ids, not binary targets
    (np.array([True, False]), "binary"),
    (np.array([[0, 1, 0], [1, 0, 0]]), "one_hot"),
    (np.array([[0, 1, 1], [1, 0, 0]]), "class_index"),  # integer multi-hot: not one-hot
    (np.array([[0.0, 1.0], [1.0, 0.0]]), "one_hot"),
    (np.array([[1.0, 1.0], [0.0, 1.0]]), "binary"),  # float multi-hot
    (np.array([0.0, 1.0, 1.0]), "binary"),
    (np.array([0.5, 1.0]), "float"),
    (np.array([np.nan, 1.0]), "float"),
    (np.array([], dtype=np.int64), None),
    (np.array(["a"]), None),
])
def test_target_kind(values, kind):
    assert target_kind(values) == kind
