"""The framework-neutral model snapshot that rules read.

Adapters (``netdoctor.adapters.torch``, ``netdoctor.adapters.keras``) reduce tensors
inside the framework and fill these records with scalars and small per-unit vectors.
No full activation tensor is ever stored. Rules never import a framework: they read a
:class:`ModelSnapshot` and nothing else, so every rule can be unit-tested on
hand-built snapshots.

Conventions adapters follow (rules rely on them):

* ``ModelSnapshot.layers`` is in execution order (the order the probe forward pass ran
  them). Containers (``nn.Sequential``, nested Keras models) are not listed; only layers
  that compute something are.
* A Keras layer with a fused activation (``Dense(10, activation="relu")``) becomes two
  records: the weight layer (``kind="linear"``, ``activation="relu"``, ``output`` = the
  pre-activation) and an activation record named ``"<layer>/relu"``
  (``kind="activation"``, ``inputs_from=("<layer>",)``). Torch activation modules and
  functional activations (``F.relu`` inside a ``forward``) become activation records too.
* Per-unit vectors use the unit axis of the framework: features of a dense output
  (last axis), channels of a conv output (axis 1 in torch, last axis in Keras).
  Vectors longer than ``ProbeSettings.max_units`` are truncated to that many units.
* Statistics are over the probe batch (all samples, all spatial/time positions).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator, Mapping, TypeVar

import numpy as np

from netdoctor.tensorstats import TensorStats

_T = TypeVar("_T")
_MISSING = object()


class Need(enum.Enum):
    """What a rule needs the adapter to collect."""

    STRUCTURE = "structure"      # layer list, kinds, connections, attributes
    WEIGHTS = "weights"          # parameter statistics
    DATA = "data"                # statistics of real (non-synthetic) input data
    ACTIVATIONS = "activations"  # per-layer input/output statistics of a forward pass
    GRADIENTS = "gradients"      # parameter gradients of one backward pass (their norms)
    GRADIENT_MOMENTS = "gradient_moments"  # with GRADIENTS: every statistic of a gradient, not only its norm
    SPARSITY = "sparsity"        # abs_mean and frac_zero of every large tensor, estimated from a subsample
    LOSS = "loss"                # the loss function and its value on the probe batch
    HISTORY = "history"          # training history (monitor only)
    FIT = "fit"                  # the opt-in fit probe: a copy trained on the probe batch

    def __str__(self) -> str:
        return self.value


# Layer kinds. Adapters map framework classes onto these.
KIND_LINEAR = "linear"          # nn.Linear, keras Dense, EinsumDense
KIND_CONV = "conv"              # nn.ConvNd / ConvTransposeNd, keras Conv*/DepthwiseConv*/SeparableConv*
KIND_EMBEDDING = "embedding"    # nn.Embedding(Bag), keras Embedding
KIND_RNN = "rnn"                # nn.LSTM/GRU/RNN, keras LSTM/GRU/SimpleRNN (and Bidirectional)
KIND_ATTENTION = "attention"    # nn.MultiheadAttention, keras MultiHeadAttention
KIND_BATCHNORM = "batchnorm"    # nn.BatchNormNd, keras BatchNormalization
KIND_LAYERNORM = "layernorm"    # nn.LayerNorm, RMSNorm, keras LayerNormalization
KIND_GROUPNORM = "groupnorm"    # nn.GroupNorm / InstanceNorm, keras GroupNormalization
KIND_DROPOUT = "dropout"        # nn.Dropout*, keras Dropout/SpatialDropout/GaussianDropout/AlphaDropout
KIND_ACTIVATION = "activation"  # nn.ReLU/Tanh/..., keras Activation/ReLU, functional activations
KIND_PREPROCESS = "preprocess"  # keras Normalization/Rescaling, torch modules that standardize
KIND_POOL = "pool"
KIND_SCALE = "scale"            # per-channel layer scale, learnable gains (ConvNeXt gamma ...)
KIND_OTHER = "other"

WEIGHT_KINDS = frozenset({KIND_LINEAR, KIND_CONV, KIND_EMBEDDING, KIND_RNN, KIND_ATTENTION})
NORM_KINDS = frozenset({KIND_BATCHNORM, KIND_LAYERNORM, KIND_GROUPNORM})

# Canonical activation names used in ``LayerRecord.activation``.
RELU_FAMILY = frozenset({"relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish", "mish",
                         "hardswish", "celu", "softplus", "prelu"})
SATURATING = frozenset({"sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign"})

# Parameter roles.
ROLE_WEIGHT = "weight"          # the weight matrix / kernel of a linear/conv/attention layer
ROLE_RECURRENT = "recurrent"    # recurrent kernel of an RNN (weight_hh)
ROLE_EMBEDDING = "embedding"    # embedding table
ROLE_BIAS = "bias"
ROLE_NORM_SCALE = "norm_scale"  # gamma of a normalization layer
ROLE_NORM_SHIFT = "norm_shift"  # beta of a normalization layer
ROLE_BUFFER = "buffer"          # non-trainable state (BN running mean/var, moving stats)
ROLE_OTHER = "other"            # everything else (layer scale, class token, position embeddings)


@dataclass(frozen=True, slots=True, eq=False)
class ParamRecord:
    """One parameter (or buffer) of a layer.

    Attributes:
        name: Local name within the layer (``"weight"``, ``"bias"``, ``"kernel"``, ``"weight_hh_l0"``).
        role: One of the ``ROLE_*`` constants.
        stats: Statistics of the values.
        grad: Statistics of the gradient from the probe backward pass; ``None`` when
            gradients were not collected or the parameter is not trainable. A finite, non-zero
            gradient carries its norm only (:meth:`TensorStats.of_norm`: ``l2`` and
            ``frac_nonfinite``; the other moments are NaN), unless a selected rule needs
            :attr:`Need.GRADIENT_MOMENTS`, which fills every statistic. A trainable parameter that the loss
            does not reach has ``grad`` with ``l2 == 0`` and ``frac_zero == 1`` (the adapter
            fills zeros for ``None`` gradients); a gradient holding NaN/Inf has every statistic.
        trainable: Whether the optimizer would update it.
        fan_in: Inputs per output unit (weights only), as He/Xavier define it.
        fan_out: Outputs per input unit (weights only).
        units: Number of output units (rows of a dense weight, filters of a conv).
        duplicate_unit_frac: Fraction of units whose weights exactly equal another unit's
            (0.0 when all units differ; ``(units-1)/units`` when all are identical).
        initializer: Initializer named in the layer config (Keras), e.g. ``"GlorotUniform"``.
    """

    name: str
    role: str
    stats: TensorStats
    grad: TensorStats | None = None
    trainable: bool = True
    fan_in: int | None = None
    fan_out: int | None = None
    units: int | None = None
    duplicate_unit_frac: float | None = None
    initializer: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class LayerRecord:
    """One computing layer, in execution order.

    Attributes:
        name: Qualified name (``"encoder.layers.0.linear1"``, ``"dense_1"``, ``"fc1/relu"``).
        type_name: Framework class name (``"Linear"``, ``"Dense"``, ``"relu"`` for functionals).
        kind: One of the ``KIND_*`` constants.
        activation: For weight layers, the activation applied to this layer's output
            (fused, or the first activation record downstream, looking through
            normalization and dropout: conv -> BN -> ReLU gives ``"relu"``; check
            ``attrs["norm_after"]`` for the normalization in between), canonical name
            (``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"softmax"``, ``"linear"``...), or
            ``None`` when unknown. For activation records, the activation itself.
        params: Parameters and buffers owned directly by this layer.
        input: Statistics of the first tensor the layer received; for entry weight layers
            (which the model input reaches through no other weight layer: ND101 reads
            them) with per-unit vectors over the input features/channels.
        output: Statistics of the layer's (first) output tensor.
        unit_active: Activation records of the ReLU family: per unit, the fraction of
            samples/positions where the output is > 0.
        unit_saturated: Activation records of saturating functions (sigmoid/tanh): per
            unit, the fraction of samples/positions whose pre-activation magnitude exceeds
            ``ProbeSettings.saturation_preact`` (judged from the output, e.g. ``|tanh| >
            tanh(5)``).
        inputs_from: Names of the layers whose outputs this layer consumed, when the
            adapter could trace the data flow (``()`` for model inputs or unknown).
        consumes_model_input: The layer consumed a model input tensor directly.
        entry: The layer is a weight layer that receives the model input through no other
            weight layer (only preprocessing, reshaping, pooling, dropout...). ND101 judges
            what entry layers see.
        executed: The forward hook fired (``False`` for modules whose parameters are used
            by a parent's fused kernel, e.g. ``MultiheadAttention.out_proj``).
        calls: How many times the layer ran in the probe forward pass (shared layers > 1).
        depth: Index among weight layers in execution order (0 = first), ``None`` otherwise.
        attrs: Kind-specific attributes: ``"p"`` (dropout rate), ``"use_bias"``,
            ``"from_logits"``, ``"units"``, ``"kernel_size"``, ``"groups"``, ``"axis"``, ...
    """

    name: str
    type_name: str
    kind: str
    activation: str | None = None
    params: tuple[ParamRecord, ...] = ()
    input: TensorStats | None = None
    output: TensorStats | None = None
    unit_active: np.ndarray | None = None
    unit_saturated: np.ndarray | None = None
    inputs_from: tuple[str, ...] = ()
    consumes_model_input: bool = False
    entry: bool = False
    executed: bool = True
    calls: int = 1
    depth: int | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    # -- convenience -----------------------------------------------------------------
    def param(self, role: str) -> ParamRecord | None:
        """First parameter with this role, or ``None``."""
        for p in self.params:
            if p.role == role:
                return p
        return None

    def params_with(self, *roles: str) -> list[ParamRecord]:
        return [p for p in self.params if p.role in roles]

    @property
    def weight(self) -> ParamRecord | None:
        """The main weight matrix/kernel/table, if any."""
        return self.param(ROLE_WEIGHT) or self.param(ROLE_EMBEDDING)

    @property
    def is_weight_layer(self) -> bool:
        return self.kind in WEIGHT_KINDS

    @property
    def is_norm(self) -> bool:
        return self.kind in NORM_KINDS


@dataclass(frozen=True, slots=True, eq=False)
class DataStats:
    """Statistics of the real input data (``None`` in the snapshot when synthetic).

    Attributes:
        inputs: Per named input (``"x"`` for a single array, dict keys, or ``"x[0]"``...),
            stats with per-feature vectors (feature axis: last for 2-D/3-D tabular or
            sequence data; the channel axis for images as the model expects them).
        targets: Stats of the targets, if given.
        target_kind: ``"class_index"``, ``"one_hot"``, ``"binary"``, ``"float"`` or ``None``.
        num_samples: Samples in the probe batch.
    """

    inputs: Mapping[str, TensorStats]
    targets: TensorStats | None = None
    target_kind: str | None = None
    num_samples: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class OutputInfo:
    """What the model returned for the probe batch.

    Attributes:
        stats: Stats of the main output tensor (the one the loss consumed), per-unit over
            the last axis.
        looks_like: ``"probabilities"`` (non-negative, rows sum to 1), ``"sigmoid"`` (all in
            [0, 1] but rows do not sum to 1), ``"log_probabilities"`` (<= 0 and rows
            log-sum-exp to 0), ``"logits"`` (anything else), or ``"unknown"``.
        final_activation: Canonical name of the last activation applied structurally
            (``"softmax"``, ``"sigmoid"``, ``"log_softmax"``, ``None`` = linear/unknown).
        final_layer: Name of the layer that produced the output.
        num_outputs: Number of output tensors the model returned.
        carries_logits: The output tensor carries the logits it was computed from, and the
            framework's cross-entropies read them instead of the probabilities (Keras 3 on the
            TensorFlow backend, for a softmax/sigmoid output): a ``from_logits=True`` loss then
            still sees the logits.
    """

    stats: TensorStats
    looks_like: str = "unknown"
    final_activation: str | None = None
    final_layer: str | None = None
    num_outputs: int = 1
    carries_logits: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class LossInfo:
    """The loss used for the probe backward pass.

    Attributes:
        name: Display name (``"CrossEntropyLoss"``, ``"categorical_crossentropy"``).
        expects: What the loss wants as model output: ``"logits"``, ``"probabilities"``,
            ``"log_probabilities"``, ``"any"`` (MSE, custom callables) or ``"unknown"``.
        value: Loss value on the probe batch (may be NaN/Inf).
        from_logits: Keras ``from_logits`` setting, when the loss has one.
        source: ``"user"`` (given by the user / compiled), ``"default"`` (netdoctor's
            documented default for the targets) or ``"surrogate"`` (no targets: a stand-in
            used only to measure gradients).
        error: What the loss raised on the model output as it is, when the probe went on with
            the output clamped into (0, 1) (see ``unit_range``); ``value`` is then NaN.
        unit_range: Measured: the loss is non-finite (or raises) on the model output as it is,
            and finite on the same output clamped into ``(1e-7, 1 - 1e-7)``: a loss that takes
            probabilities (a log-loss) fed with values outside [0, 1]. ``None`` when not measured
            (the loss was finite on the output).
    """

    name: str
    expects: str = "unknown"
    value: float = float("nan")
    from_logits: bool | None = None
    source: str = "user"
    error: str | None = None
    unit_range: bool | None = None


@dataclass(frozen=True, slots=True, eq=False)
class LossProbe:
    """What the loss asks of the output, measured without knowing how the loss is written.

    Filled by the adapter from the main output ``z`` (rows over its last axis, ``C`` units), the
    gradient of the loss with respect to it, and the targets. ``None`` fields were not measurable
    (no gradient reached the output, no targets, the output is too large to reduce on the host).

    Attributes:
        units: ``C``, the size of the output's last axis.
        rows: Rows (samples x positions) the measurement covers.
        nonnegative: Every output entry is >= 0.
        row_sum_err: ``max |sum over the last axis - 1|`` (0 for a softmax over the classes).
        batch_sum_err: ``max |sum over the batch axis - 1|`` for a 2-D output (0 for a softmax
            taken over the batch instead of the classes).
        zero_grad_rows: Fraction of rows whose loss gradient is exactly zero in every unit.
        zero_grad_wrong: Classification targets only: share of rows that the model gets wrong
            (argmax is not the target) and whose loss gradient is exactly zero: samples the loss
            ignores although they are misclassified (0 for cross-entropy and for a hinge loss,
            whose zero-gradient rows are the correct ones).
        grad_vs_ce: Classification targets only, over the rows whose target probability is below
            0.5 (at least 4): the norm of the gradient the loss sends into the logits (through the
            softmax Jacobian when the output is a distribution) divided by the norm cross-entropy
            would send, ``||p - onehot|| / rows``. 1 for any cross-entropy, >= 0.25 for a focal
            loss (gamma 2), ~0.02 for MSE on a 10-class softmax.
        target_classes: ``"class_index"``/``"one_hot"`` when the targets name classes.
        expected_init_loss: ``ln C`` for classification targets (cross-entropy of a uniform guess).
        target_var: Variance of float targets.
        target_outside: ``{"0,1": frac, "-1,1": frac}``: fraction of float targets outside the
            range of a sigmoid/softmax and of a tanh.
        target_floor: ``{"0,1": mse, "-1,1": mse}``: the smallest mean squared error an output
            confined to that range can reach (``mean((y - clip(y))**2)``).
        target_not_dist: Float targets shaped like the output: share of target rows that are not a
            probability distribution over the output's units (a negative entry, or a sum off 1 by
            more than 1e-3); what a cross-entropy needs of soft targets.
        soft_ce_err: Float targets shaped like a 2+-unit output: relative distance between the
            measured gradient at the output (best scale) and cross-entropy's with these targets as
            class probabilities, ``softmax(z) * sum(t) - t``; ~0 when the loss is that
            cross-entropy, whatever it is called.
        sum_ratio: ``(L(first half) + L(second half)) / L(both halves)`` of the user's loss on
            the output rows it was given: 2 for a mean over the batch, 1 for a sum (exactly, for
            any per-sample loss), something else for losses that mix samples. One of torch's or
            Keras' own loss classes (not a subclass, with no class weights or ignored targets)
            gets the value its ``reduction`` fixes, without evaluating the halves.
    """

    units: int
    rows: int
    nonnegative: bool = False
    row_sum_err: float = float("inf")
    batch_sum_err: float | None = None
    zero_grad_rows: float | None = None
    zero_grad_wrong: float | None = None
    grad_vs_ce: float | None = None
    target_classes: str | None = None
    expected_init_loss: float | None = None
    target_var: float | None = None
    target_outside: Mapping[str, float] = field(default_factory=dict)
    target_floor: Mapping[str, float] = field(default_factory=dict)
    target_not_dist: float | None = None
    soft_ce_err: float | None = None
    sum_ratio: float | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FitProbe:
    """The opt-in fit probe: a copy of the model trained on its own probe batch.

    Attributes:
        steps: Optimizer steps taken.
        optimizer: e.g. ``"Adam(lr=0.001)"``.
        losses: The training loss before each step.
        final: The loss after the last step.
        seconds: Wall time of the probe.
        note: Why the probe stopped early, if it did.
    """

    steps: int
    optimizer: str
    losses: tuple[float, ...]
    final: float
    seconds: float = 0.0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Knobs of the measurement itself (not of the rules).

    Attributes:
        max_samples: Cap on the probe batch (default 256).
        max_units: Cap on per-unit vector length.
        saturation_preact: Pre-activation magnitude beyond which a sigmoid/tanh unit counts
            as saturated (5.0, DeepDiagnosis' cut-off; tanh(5)=0.99991, sigmoid(5)=0.9933).
        seed: Seed for dropout masks and synthetic inputs; the global RNG state is restored.
    """

    max_samples: int = 256
    max_units: int = 4096
    saturation_preact: float = 5.0
    seed: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class ModelSnapshot:
    """Everything rules may read about one model.

    Attributes:
        framework: ``"torch"`` or ``"keras"`` (``"keras/torch"`` style backends are
            reported in ``framework_version``).
        framework_version: e.g. ``"2.13.0"`` or ``"3.15.1 (tensorflow 2.21.0)"``.
        model_class: Class name of the model.
        layers: Computing layers in execution order.
        collected: What the adapter collected; rules needing anything else are skipped.
        missing: Reason per need that was not collected (shown to the user).
        param_count: Total parameters.
        trainable_param_count: Trainable parameters.
        batch_size: Samples in the probe batch.
        synthetic_inputs: Inputs were synthesized from a shape (no real data).
        data: Real data statistics (``None`` when synthetic).
        output: The model output on the probe batch.
        loss: The loss used for gradients.
        loss_probe: What the loss asks of the output (see :class:`LossProbe`), or ``None``.
        fit: The fit probe (``check(..., fit_probe=True)`` / ``--fit-probe``), or ``None``.
        residual: ``True`` when the adapter saw a residual connection (an addition whose
            operands come from different depths), ``False`` when it is sure there is none,
            ``None`` when unknown.
        suppressions: ``{layer name: {rule code or name: reason}}`` from ``netdoctor.allow``.
        history: Training history (monitor only), see ``netdoctor.history``.
        notes: Remarks for the report header ("surrogate loss: MSE against random targets").
    """

    framework: str
    framework_version: str = ""
    model_class: str = ""
    layers: tuple[LayerRecord, ...] = ()
    collected: frozenset[Need] = frozenset()
    missing: Mapping[Need, str] = field(default_factory=dict)
    param_count: int = 0
    trainable_param_count: int = 0
    batch_size: int = 0
    synthetic_inputs: bool = False
    data: DataStats | None = None
    output: OutputInfo | None = None
    loss: LossInfo | None = None
    loss_probe: LossProbe | None = None
    fit: FitProbe | None = None
    residual: bool | None = None
    suppressions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    history: Any = None
    notes: tuple[str, ...] = ()
    #: :meth:`memo`'s readings, built on first use: the lookups of the helpers below (every rule asks them,
    #: per layer) and the readings the analyses share
    _memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- navigation helpers for rules ----------------------------------------------------
    def index(self, name: str) -> int | None:
        """Position in :attr:`layers` of the first record named ``name`` (``None``: no such layer)."""
        def positions() -> dict[str, int]:
            got: dict[str, int] = {}
            for i, rec in enumerate(self.layers):
                got.setdefault(rec.name, i)
            return got

        return self.memo("positions", positions).get(name)

    def layer(self, name: str) -> LayerRecord | None:
        i = self.index(name)
        return self.layers[i] if i is not None else None

    def memo(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()``, once per snapshot and ``key``: for readings of the (immutable) snapshot that
        several rules ask for (the gradient chain, the norm layer after each layer)."""
        got = self._memo.get(key, _MISSING)
        if got is _MISSING:
            got = self._memo[key] = compute()
        return got

    def weight_layers(self, executed_only: bool = False) -> list[LayerRecord]:
        """Weight layers (linear, conv, embedding, rnn, attention) in execution order."""
        return list(self.memo(("weight_layers", executed_only), lambda: tuple(
            r for r in self.layers if r.is_weight_layer and (r.executed or not executed_only))))

    def consumers(self, name: str) -> list[LayerRecord]:
        """Layers that consumed the output of ``name`` (by traced data flow)."""
        def consumers() -> dict[str, list[LayerRecord]]:
            got: dict[str, list[LayerRecord]] = {}
            for r in self.layers:
                for src in dict.fromkeys(r.inputs_from):
                    got.setdefault(src, []).append(r)
            return got

        return list(self.memo("consumers", consumers).get(name, ()))

    def successor(self, name: str) -> LayerRecord | None:
        """The layer that ran right after ``name`` (execution order)."""
        i = self.index(name)
        return self.layers[i + 1] if i is not None and i + 1 < len(self.layers) else None

    def iter_params(self, *roles: str) -> Iterator[tuple[LayerRecord, ParamRecord]]:
        for rec in self.layers:
            for p in rec.params:
                if not roles or p.role in roles:
                    yield rec, p

    @property
    def output_layer(self) -> LayerRecord | None:
        """The last weight layer that executed (the classifier/regression head)."""
        wl = self.weight_layers(executed_only=True)
        return wl[-1] if wl else None

    def has(self, need: Need) -> bool:
        return need in self.collected
