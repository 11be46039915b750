"""Fix snippets name what the model contains, in code that runs: submodules by a valid reference
(never an assignment to a call), activations called in forward() as calls, not as nn modules."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from netdoctor.rules.snippets import keras_ref, module_path, quote, torch_assign, torch_ref


@pytest.mark.parametrize(("name", "ref", "assign"), [
    ("fc1", "model.fc1", "model.fc1 = X"),
    ("net.2", "model.net[2]", "model.net[2] = X"),
    ("relu#2", "model.relu", "model.relu = X"),  # the 2nd call of a reused module is the module
    ("encoder.layers.0.act#3/relu", "model.encoder.layers[0].act", "model.encoder.layers[0].act = X"),
    ("blocks.head-1", "model.blocks.get_submodule('head-1')", "setattr(model.blocks, 'head-1', X)"),
    ("head-1", "model.get_submodule('head-1')", "setattr(model, 'head-1', X)"),
    ("blocks.class", "model.blocks.get_submodule('class')", "setattr(model.blocks, 'class', X)"),
])
def test_torch_references_and_assignments_are_valid_code(name: str, ref: str, assign: str) -> None:
    assert torch_ref(name) == ref
    assert torch_assign(name, "X") == assign
    ast.parse(ref)
    ast.parse(assign)


def test_module_path_drops_call_count_and_activation_suffix() -> None:
    assert module_path("net.2#3/relu") == ["net", "2"]
    assert module_path("relu") == ["relu"]


def test_keras_names_with_quotes_stay_valid() -> None:
    assert keras_ref("dense_1") == 'model.get_layer("dense_1")'
    ast.parse(keras_ref('odd"name'))
    assert quote('a"b') == repr('a"b')


# -- on real torch models ---------------------------------------------------------------
torch = pytest.importorskip("torch")
nn = torch.nn


class FunctionalSoftmax(nn.Module):
    """A reused nn.ReLU and a torch.softmax call in forward()."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(20, 32), nn.Linear(32, 32), nn.Linear(32, 5)
        self.relu = nn.ReLU()
        nn.init.constant_(self.fc2.bias, -5.0)  # the second relu call is dead

    def forward(self, x):
        return torch.softmax(self.out(self.relu(self.fc2(self.relu(self.fc1(x))))), dim=-1)


class DictSoftmax(nn.Module):
    """An nn.Softmax module under a ModuleDict key that is no attribute name."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
        self.blocks = nn.ModuleDict({"head-1": nn.Linear(32, 5), "act-out": nn.Softmax(dim=-1)})

    def forward(self, x):
        return self.blocks["act-out"](self.blocks["head-1"](self.body(x)))


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(128, 20, generator=g), torch.randint(0, 5, (128,), generator=g)


def _check(model):
    import netdoctor

    torch.manual_seed(0)
    x, y = _batch()
    return netdoctor.check(model, x, y, loss_fn=nn.CrossEntropyLoss())


def test_functional_softmax_gets_advice_about_the_call_in_forward() -> None:
    torch.manual_seed(0)
    report = _check(FunctionalSoftmax())
    nd503 = next(f for f in report.findings if f.code == "ND503")
    assert "nn.Softmax" not in nd503.snippet  # the model has no softmax module
    assert "the model's forward(): delete the softmax(...) call" in nd503.snippet
    ast.parse(nd503.snippet)
    dead = next(f for f in report.findings if f.code == "ND401")
    assert dead.layer == "relu#2"
    assert "get_submodule" not in (dead.snippet or "") and "relu#2" not in (dead.snippet or "")
    ast.parse(dead.snippet)


class ReusedDeadReLU(nn.Module):
    """One nn.ReLU module called twice; its second call is dead (negative weights, zero bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(20, 32), nn.Linear(32, 32), nn.Linear(32, 5)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.fc2.weight.copy_(-self.fc2.weight.abs())
            self.fc2.bias.zero_()

    def forward(self, x):
        return self.out(self.relu(self.fc2(self.relu(self.fc1(x)))))


def test_reused_module_is_replaced_by_a_valid_assignment_that_runs() -> None:
    torch.manual_seed(0)
    model = ReusedDeadReLU()
    dead = next(f for f in _check(model).findings if f.code == "ND401")
    assert dead.layer == "relu#2"
    assert "model.relu = nn.LeakyReLU(0.01)  # was nn.ReLU (shared" in dead.snippet  # not get_submodule('relu#2') = ...
    exec(dead.snippet, {"model": model, "nn": nn})  # as pasted
    assert isinstance(model.relu, nn.LeakyReLU)
    model(_batch()[0])


def test_softmax_module_snippet_runs_on_the_model_and_leaves_logits() -> None:
    torch.manual_seed(0)
    model = DictSoftmax()
    nd503 = next(f for f in _check(model).findings if f.code == "ND503")
    assert nd503.snippet.splitlines()[0].startswith("setattr(model.blocks, 'act-out', nn.Identity())")
    exec(nd503.snippet, {"model": model, "nn": nn})  # as pasted
    assert isinstance(model.blocks["act-out"], nn.Identity)
    out = model(_batch()[0]).detach().numpy()
    assert not np.allclose(out.sum(axis=1), 1.0)  # logits now, not probabilities


# -- the learning-rate advice of the training rules -----------------------------------------
@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize(("lrs", "scheduler", "optimizer"), [
    ((1e-2,) * 6, None, "SGD"),  # constant rate
    ((1e-3, 1e-2, 5e-3, 1e-3, 5e-4, 1e-4), "OneCycleLR", "AdamW"),  # a known schedule
    ((1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4), None, None),  # a decaying rate, schedule unknown
    ((1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4), "my schedule", "my optimizer"),  # logged names that are no code
])
@pytest.mark.parametrize("factor", [0.3, 3.0])
def test_learning_rate_snippets_are_valid_python(framework, lrs, scheduler, optimizer, factor) -> None:
    from netdoctor.findings import Severity
    from netdoctor.history import History, Sample
    from netdoctor.rules import registry
    from netdoctor.rules.spec import RuleContext
    from netdoctor.rules.training.advice import lr_advice

    h = History(framework=framework, samples=tuple(Sample(step=i * 10, lr=v) for i, v in enumerate(lrs)),
                scheduler=scheduler, optimizer=optimizer)
    ctx = RuleContext(spec=registry()["ND602"], severity=Severity.WARNING, framework=framework)
    advice = lr_advice(ctx, h, 30, factor)
    if advice.snippet is not None:
        ast.parse(advice.snippet)
        compile(advice.snippet, "lr advice", "exec")


def test_the_corpus_check_rejects_invalid_snippets() -> None:
    from _snippet_syntax import assert_valid_snippets

    from netdoctor.findings import Category, Finding, Report, Severity

    def report(snippet: str) -> Report:
        return Report(findings=(Finding("ND401", "dead-units", Severity.WARNING, Category.from_code("ND401"), "m",
                                        snippet=snippet),))

    assert_valid_snippets(report("model.relu = nn.LeakyReLU(0.01)"), "ok")
    for bad in ("model.get_submodule('relu#2') = nn.LeakyReLU(0.01)",  # the reported snippet
                "model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), ...)",
                "nn.Linear(6, 64), nn.ReLU(),  # in place of `body.0` and\nits activation"):  # a wrapped comment
        with pytest.raises(pytest.fail.Exception):
            assert_valid_snippets(report(bad), "bad")


def test_single_unit_softmax_snippet_removes_the_models_own_softmax() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 1), nn.Softmax(dim=1))
    x = _batch()[0]
    y = (x[:, :1] > 0).float()
    import netdoctor

    f = next(f for f in netdoctor.check(model, x, y, loss_fn=nn.BCELoss()).findings if f.code == "ND503")
    assert f.snippet.splitlines()[0] == "model[3] = nn.Identity()  # was nn.Softmax"
    exec(f.snippet, {"model": model, "nn": nn})
    assert isinstance(model[3], nn.Identity)
