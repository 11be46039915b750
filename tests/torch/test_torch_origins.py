"""Torch modules are located at the line of the model file that created them (reports' path:line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from _source_files import line_of, write_source  # noqa: E402

from netdoctor.modelfile.loader import load_model_file  # noqa: E402


def test_sequential_elements_loops_helpers_and_copies(tmp_path):
    write_source(tmp_path / "torch_blocks.py", """
        from torch import nn

        def block(n):
            return nn.Sequential(nn.Linear(n, n), nn.ReLU())
    """)
    path = write_source(tmp_path / "model.py", """
        import torch
        from torch import nn
        from torch_blocks import block

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Sequential(
                    nn.Linear(8, 16),  # STEM_0
                    nn.ReLU(),  # STEM_1
                )
                self.heads = nn.ModuleList()
                for _ in range(3):
                    self.heads.append(nn.Linear(16, 16))  # LOOP
                self.extra = block(16)  # HELPER
                layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)  # ENC_LAYER
                self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)  # ENCODER
                self.out = nn.Linear(16, 2)  # OUT

            def forward(self, x):
                h = self.stem(x)
                for head in self.heads:
                    h = head(h)
                return self.out(self.encoder(self.extra(h)[:, None])[:, 0])

        def build_model():
            torch.manual_seed(0)
            return Net()  # BUILD
    """)
    before = nn.Module.__init__
    loaded = load_model_file(str(path))
    lines = loaded.layer_lines
    assert nn.Module.__init__ is before  # the wrap is gone
    assert lines["stem"] == line_of(path, "self.stem =")
    assert lines["stem.0"] == line_of(path, "STEM_0") and lines["stem.1"] == line_of(path, "STEM_1")
    assert [lines[f"heads.{k}"] for k in range(3)] == [line_of(path, "LOOP")] * 3
    assert lines["extra"] == lines["extra.0"] == line_of(path, "HELPER")  # made in torch_blocks.py: the file's call
    assert lines["encoder"] == line_of(path, "ENCODER")
    assert "encoder.layers.0.linear1" not in lines  # a deep copy: never constructed, located by its parent
    assert lines["out"] == line_of(path, "OUT")
    assert "" not in lines and not any("netdoctor" in k for m in loaded.model.modules() for k in vars(m))


def test_findings_and_the_concise_report_point_at_the_creating_line(tmp_path):
    path = write_source(tmp_path / "model.py", """
        import torch
        from torch import nn

        def build_model():
            torch.manual_seed(0)
            model = nn.Sequential(
                nn.Linear(6, 32), nn.ReLU(),
                nn.Linear(32, 32), nn.ReLU(),  # ZERO
                nn.Linear(32, 2),
            )
            nn.init.zeros_(model[2].weight)
            return model

        def sample_batch():
            g = torch.Generator().manual_seed(0)
            return torch.randn(64, 6, generator=g), torch.randint(0, 2, (64,), generator=g)
    """)
    out = subprocess.run([sys.executable, "-m", "netdoctor.cli", "check", str(path), "--format", "concise",
                          "--select", "ND201"], capture_output=True, text=True, cwd=tmp_path)
    assert f"model.py:{line_of(path, 'ZERO')}: ND201" in out.stdout, out.stdout + out.stderr
