"""Hugging Face model folders: ``netdoctor check path/to/model_dir`` on what ``save_pretrained`` wrote.

:func:`load_folder` reads ``config.json`` and builds the model with the class its
``architectures`` names (``BertForSequenceClassification``...; ``AutoModel`` when it names
none) from the folder's weights, offline (``local_files_only=True``; code shipped with the
model, ``auto_map``, needs ``--unsafe``). Without data, it synthesizes a batch the model
accepts: integer token ids within the config's vocabulary with an attention mask (text), or
N(0, 1) pixel values of the config's image size (vision), and labels for the heads whose loss
the model computes itself (sequence, token and image classification, causal and masked
language modelling, question answering), so the probe loss is the model's own. The batch is
marked synthetic: the data rules are skipped with the reason.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from netdoctor.errors import ModelLoadError

#: Samples in a synthesized batch, and tokens per sample for text models.
TEXT_BATCH, TEXT_LENGTH, VISION_BATCH = 16, 32, 8


class SyntheticBatch(dict):
    """Keyword inputs the loader made up (not data to judge); the adapters skip the data rules on them."""

    netdoctor_synthetic = True
    netdoctor_reason = ""


def is_model_folder(path: Path) -> bool:
    """A folder with a ``config.json`` (what ``save_pretrained`` writes)."""
    return path.is_dir() and (path / "config.json").is_file()


def load_folder(path: Path, *, unsafe: bool = False, seed: int = 0) -> tuple[Any, SyntheticBatch, str, str]:
    """Build the model of a ``save_pretrained`` folder and a synthetic batch for it.

    Returns:
        ``(model, batch, source, data_source)``: the torch model, its keyword inputs, and how
        each was made (for the report header).

    Raises:
        ModelLoadError: transformers missing, custom code without ``--unsafe``, unreadable weights.
    """
    try:
        import transformers
    except ImportError:
        raise ModelLoadError(f"{path} is a Hugging Face model folder; pip install transformers to check it") from None
    try:
        with _quiet(transformers):
            config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True,
                                                             trust_remote_code=unsafe)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {path}/config.json ({type(exc).__name__}: {_first(exc)})") from None
    if getattr(config, "auto_map", None) and not unsafe:
        raise ModelLoadError(f"{path} ships its own model code (auto_map in config.json); pass --unsafe if you trust it")
    arch = (getattr(config, "architectures", None) or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        cls, arch = transformers.AutoModel, "AutoModel"
    try:
        with _quiet(transformers):
            model = cls.from_pretrained(str(path), local_files_only=True, trust_remote_code=unsafe)
    except Exception as exc:
        raise ModelLoadError(f"cannot build {arch} from {path} ({type(exc).__name__}: {_first(exc)}); "
                             "is the folder complete (config.json and model.safetensors)?") from None
    batch, what = synthetic_batch(model, config, arch, seed)
    return model, batch, f"{arch}.from_pretrained()", f"config.json (synthesized: {what})"


def synthetic_batch(model: Any, config: Any, arch: str, seed: int) -> tuple[SyntheticBatch, str]:
    """Keyword inputs (and labels where the head computes its own loss) and a description of them."""
    import numpy as np

    rng = np.random.default_rng(int(seed))
    main = getattr(model, "main_input_name", "input_ids")
    batch = SyntheticBatch()
    if main == "pixel_values":
        size = getattr(config, "image_size", 224)
        size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        channels = int(getattr(config, "num_channels", 3))
        n = VISION_BATCH
        batch["pixel_values"] = rng.standard_normal((n, channels, *size)).astype(np.float32)
        what = f"pixel values N(0, 1) of shape ({channels}, {size[0]}, {size[1]})"
        length = None
    elif main == "input_ids":
        vocab = int(getattr(config, "vocab_size", 0) or 0)
        if vocab < 2:
            raise ModelLoadError(f"config.json of {arch} has no vocab_size; pass --data with token ids")
        limit = [getattr(config, k, None) for k in ("max_position_embeddings", "n_positions", "max_seq_len")]
        length = min([TEXT_LENGTH] + [int(v) for v in limit if isinstance(v, int) and v > 0])
        n = TEXT_BATCH
        special = {getattr(config, k, None) for k in ("pad_token_id", "bos_token_id", "eos_token_id")}
        low = 1 + max((t for t in special if isinstance(t, int) and t < 8), default=-1)
        ids = rng.integers(min(low, vocab - 1), vocab, size=(n, length))
        batch["input_ids"] = ids.astype(np.int64)
        batch["attention_mask"] = np.ones((n, length), dtype=np.int64)
        if int(getattr(config, "type_vocab_size", 0) or 0) > 1:
            batch["token_type_ids"] = np.zeros((n, length), dtype=np.int64)
        what = f"{n} x {length} token ids in [{min(low, vocab - 1)}, {vocab})"
    else:
        raise ModelLoadError(f"{arch} takes {main!r} as its input, which netdoctor cannot synthesize; pass --data")
    labels = _labels(arch, config, rng, n, length, batch)
    if labels:
        batch.update(labels)
        what += f"; {', '.join(labels)} for the model's own loss"
    batch.netdoctor_reason = (f"no data given: the inputs were synthesized from config.json ({what}); pass --data "
                              "with real inputs to check the data")
    return batch, what


def _labels(arch: str, config: Any, rng: Any, n: int, length: int | None, batch: dict) -> dict[str, Any]:
    """Labels for the heads that compute their own loss from them (empty for a bare encoder)."""
    import numpy as np

    num = int(getattr(config, "num_labels", 2) or 2)
    if arch.endswith("ForSequenceClassification") or arch.endswith("ForImageClassification"):
        problem = getattr(config, "problem_type", None)
        if problem == "regression" or num == 1:
            return {"labels": rng.standard_normal((n, num) if num > 1 else (n,)).astype(np.float32)}
        if problem == "multi_label_classification":
            return {"labels": rng.integers(0, 2, size=(n, num)).astype(np.float32)}
        return {"labels": rng.integers(0, num, size=(n,)).astype(np.int64)}
    if length is None:
        return {}
    if arch.endswith(("ForCausalLM", "LMHeadModel", "ForMaskedLM", "ForPreTraining")) and "input_ids" in batch:
        if arch.endswith("ForPreTraining"):
            return {}
        return {"labels": batch["input_ids"].copy()}
    if arch.endswith("ForTokenClassification"):
        return {"labels": rng.integers(0, num, size=(n, length)).astype(np.int64)}
    if arch.endswith("ForQuestionAnswering"):
        start = rng.integers(0, length, size=(n,))
        return {"start_positions": start.astype(np.int64),
                "end_positions": np.minimum(start + rng.integers(0, 4, size=(n,)), length - 1).astype(np.int64)}
    return {}


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """No progress bars and only errors from transformers' logger while loading; restored afterwards."""
    log = transformers.utils.logging
    level, bars = log.get_verbosity(), log.is_progress_bar_enabled()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        yield
    finally:
        log.set_verbosity(level)
        if bars:
            log.enable_progress_bar()


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:240] if text else ""
