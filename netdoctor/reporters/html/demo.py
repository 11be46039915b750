"""A hand-built, ResNet50-sized report for demos, tests and ``bench/bench_html.py``.

``python -m netdoctor.reporters.html.demo out.html`` writes the demo page. The numbers
are made up but shaped like a real probe: gradients that shrink toward the input,
ReLU layers with some dead units, one saturated tanh head, a monitored run whose loss
goes NaN.
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any

from netdoctor.findings import Category, Finding, Report, Severity, SkippedRule, TargetInfo

STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))  # ResNet50 bottleneck stages


def demo_layers(stages: tuple[int, ...] = (3, 4, 6, 3), seed: int = 0) -> list[dict[str, Any]]:
    """Layer rows (see ``health.layer_health``) of a ResNet-like network with ``stages``
    bottleneck blocks per stage: ``6 * sum(stages) + 8`` rows (104 for ResNet50's (3, 4, 6, 3))."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    names: list[tuple[str, int, int]] = [("conv1", 3 * 49, 64 * 49)]
    for si, ((width, _), blocks) in enumerate(zip(STAGES, stages)):
        for b in range(blocks):
            c_in = width * 4 if b else (64 if si == 0 else width * 2)
            names += [(f"layer{si + 1}.{b}.conv1", c_in, width), (f"layer{si + 1}.{b}.conv2", width * 9, width * 9),
                      (f"layer{si + 1}.{b}.conv3", width, width * 4)]
            if b == 0:
                names.append((f"layer{si + 1}.{b}.downsample.0", c_in, width * 4))
    total = len(names)
    for d, (name, fan_in, fan_out) in enumerate(names):
        std = math.sqrt(2.0 / fan_in) * rng.uniform(0.7, 1.3)
        numel = fan_in * fan_out
        wn = std * math.sqrt(numel)
        g = wn * 10 ** (-4.5 + 3.0 * d / total + rng.uniform(-0.4, 0.4))
        rows.append({"layer": name, "type": "Conv2d", "kind": "conv", "weight_norm": wn, "grad_norm": g,
                     "grad_to_weight": g / wn, "act_std": rng.uniform(0.4, 1.6) * (0.97 ** d),
                     "weight_std": std, "fan_in": fan_in, "fan_out": fan_out})
        if not name.endswith("downsample.0"):
            rows.append({"layer": f"{name}/relu", "type": "ReLU",
                         "kind": "activation", "act_std": rng.uniform(0.3, 0.9),
                         "dead_frac": min(1.0, max(0.0, rng.gauss(0.12, 0.1)))})
    rows.append({"layer": "fc", "type": "Linear", "kind": "linear", "weight_norm": 3.1, "grad_norm": 0.42,
                 "grad_to_weight": 0.42 / 3.1, "act_std": 2.7, "weight_std": 0.0138, "fan_in": 2048, "fan_out": 1000})
    rows.append({"layer": "head/tanh", "type": "tanh", "kind": "activation", "act_std": 0.97, "saturated_frac": 0.64})
    return rows


def demo_findings(rows: list[dict[str, Any]], n: int = 40, file: str | None = "models/resnet50.py") -> list[Finding]:
    """``n`` findings spread over the layers, some with snippets and verification."""
    out = []
    kinds = [
        ("ND301", "vanishing-gradients", Severity.ERROR, Category.GRADIENTS),
        ("ND401", "dead-units", Severity.WARNING, Category.ACTIVATIONS),
        ("ND203", "init-scale", Severity.WARNING, Category.WEIGHTS),
        ("ND504", "bias-before-batchnorm", Severity.INFO, Category.STRUCTURE),
    ]
    for i in range(n):
        code, name, sev, cat = kinds[i % len(kinds)]
        row = rows[(i * 7) % len(rows)]
        layer = str(row["layer"])
        verification = None
        if i % 5 == 0:
            verification = {"verdict": "fixed", "before": {"grad_norm": 3.2e-9, "dead_frac": 0.71},
                            "after": {"grad_norm": 4.1e-3, "dead_frac": 0.08}, "method": "re-probed after the fix"}
        out.append(Finding(
            code=code, name=name, severity=sev, category=cat, layer=layer, file=file,
            message=f"{name.replace('-', ' ')} in `{layer}`: measured {row.get('grad_norm', 0.5):.3g} (limit 1e-7)",
            recommendation="Initialize the layer with He (Kaiming) normal initialization.",
            snippet=f"torch.nn.init.kaiming_normal_(model.{layer}.weight, nonlinearity='relu')",
            evidence={"grad_norm": row.get("grad_norm", 0.0), "depth": i, "limit": 1e-7},
            verification=verification,
        ))
    return out


def demo_history(steps: int = 300, nan_at: int | None = 260) -> dict[str, list[float]]:
    """A loss curve that decays, wobbles and (optionally) turns NaN at ``nan_at``."""
    rng = random.Random(1)
    loss, gn = [], []
    for s in range(steps):
        v = 2.3 * math.exp(-s / 80) + 0.15 + rng.uniform(-0.05, 0.05)
        g = 1.5 * math.exp(-s / 150) + 0.2 + rng.uniform(0, 0.1) + (12.0 if s % 97 == 50 else 0.0)
        if nan_at is not None and s >= nan_at:
            v, g = float("nan"), float("inf")
        loss.append(v)
        gn.append(g)
    return {"steps": list(range(steps)), "loss": loss, "grad_norm": gn}


def demo_report(n_findings: int = 40, history: bool = True, stages: tuple[int, ...] = (3, 4, 6, 3),
                history_steps: int = 300) -> tuple[Report, dict[str, list[float]] | None]:
    """``(report, history)``: a ResNet50-sized report and its monitored run."""
    rows = demo_layers(stages)
    findings = demo_findings(rows, n_findings)
    hist = demo_history(history_steps, nan_at=history_steps * 13 // 15) if history else None
    if hist is not None:
        findings.append(Finding(code="ND601", name="nonfinite-loss", severity=Severity.ERROR,
                                category=Category.TRAINING, message=f"the training loss became NaN at step {history_steps * 13 // 15}",
                                recommendation="Lower the learning rate or clip gradients.",
                                snippet="torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)",
                                file="models/resnet50.py", step=history_steps * 13 // 15))
        findings.append(Finding(code="ND604", name="gradient-spikes", severity=Severity.WARNING,
                                category=Category.TRAINING, message="gradient norm spiked to 13.4 (median 0.9)",
                                file="models/resnet50.py", step=147))
    target = TargetInfo(
        file="models/resnet50.py", framework="torch", framework_version="2.13.0", model_class="ResNet",
        param_count=25_557_032, batch_size=64, loss="CrossEntropyLoss", layers=tuple(rows),
        rules_passed=("ND101", "ND102", "ND201", "ND202", "ND204", "ND302", "ND303", "ND501", "ND502", "ND503"),
        skipped=(SkippedRule("ND605", "update-ratio", "no optimizer steps were recorded"),),
        notes=("synthetic targets: class indices drawn uniformly",),
    )
    report = Report(findings=tuple(findings), targets=(target,),
                    rules_run=tuple(sorted({f.code for f in findings} | set(target.rules_passed))),
                    timings={"collect": 1.84, "rules": 0.03, "total": 1.87})
    return report, hist


def main(argv: list[str]) -> int:
    from netdoctor.reporters.html import render

    report, hist = demo_report()
    path = argv[1] if len(argv) > 1 else "netdoctor-demo.html"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render(report, history=hist))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
