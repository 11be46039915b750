"""Reproducible user code: seed every RNG before the model file's code runs, restore them after.

A model file initializes weights, shuffles a DataLoader or a ``tf.data`` pipeline and draws
random data while it is imported and while its functions are called. :func:`seeded` seeds
Python's ``random``, numpy's global RNG and, for the frameworks the file uses (or that are
already imported), torch's global RNG and Keras/TensorFlow's seeds with ``--seed`` (default 0),
so two runs of an unchanged file give the same model, the same batch and the same numbers;
the caller's RNG states are put back afterwards (the framework parts are the adapters'
``user_code_seeded``).
"""

from __future__ import annotations

import contextlib
import random
import sys
from typing import Iterable, Iterator

from netdoctor.frameworks import get_adapter


@contextlib.contextmanager
def seeded(seed: int, frameworks: Iterable[str] = ()) -> Iterator[None]:
    """Seed Python, numpy and the named (or already imported) frameworks for the body; restore afterwards.

    Args:
        seed: The seed (``--seed``).
        frameworks: ``"torch"`` and/or ``"keras"``: frameworks the user code is about to import.
    """
    import numpy as np

    wanted = set(frameworks)
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        with contextlib.ExitStack() as stack:
            if "torch" in wanted or "torch" in sys.modules:
                stack.enter_context(get_adapter("torch").user_code_seeded(seed))
            if "keras" in wanted or "keras" in sys.modules:
                stack.enter_context(get_adapter("keras").user_code_seeded(seed))
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
