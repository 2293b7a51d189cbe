"""The benchmark's own model builders: what they create follows the model's device (checked on `meta`,
which fails like CUDA does on a tensor left behind on the CPU, without a GPU)."""
import importlib.util
from itertools import chain
from pathlib import Path

import pytest
import torch

from fpq.models import create_model
from fpq.method.perturb import attach_sfp
from fpq.quant import prepare_qat

REPO = Path(__file__).resolve().parent.parent
META = torch.device("meta")


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tensors(model):
    return list(chain(model.parameters(), model.buffers()))


@pytest.mark.parametrize("method", ["lsq", "fpq"])
def test_the_plain_loops_quantizers_follow_the_model_onto_its_device(method):
    bench = load_bench("bench_step")
    x = torch.randn(4, 3, 32, 32, device=META)
    model, teacher = bench.plain_model("resnet20", method, 10, META, x)
    assert {t.device for t in tensors(model)} == {META}
    assert {t.device for t in tensors(teacher)} == {META}
    assert any(isinstance(m, bench.PlainQuantConv) for m in model.modules())


@pytest.mark.parametrize("family", ["lsq", "lsq+", "pact"])
def test_fpqs_quantizers_and_sfp_follow_the_model_onto_its_device(family):
    model = create_model("mobilenetv2", 10).to(META)
    prepare_qat(model, 2, 4, family, fused=True)
    attach_sfp(model, 0.1)
    assert {t.device for t in tensors(model)} == {META}
