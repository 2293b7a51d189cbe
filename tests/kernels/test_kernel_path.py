"""The Triton path in a model and a run: the quantizers' switch, the one-time self-check and its
fallback, and a small ResNet-20 trained 3 steps through the kernels (Triton's interpreter) against
the torch path."""
from __future__ import annotations

import copy

import pytest

from tests.kernels import NO_TRITON

if NO_TRITON:  # the kernels need Triton; the torch path they are checked against is tested elsewhere
    pytest.skip(NO_TRITON, allow_module_level=True)

import torch

from fpq.config import QuantConfig, RuntimeConfig
from fpq.kernels import ops
from fpq.method.objective import Objective
from fpq.method.perturb import attach_sfp
from fpq.method.registry import METHODS
from fpq.models import create_model
from fpq.quant import calibrate, kernel_path, prepare_qat, set_kernels
from fpq.quant.quantizers import LsqQuantizer, MinMaxWeightQuantizer, PactQuantizer, Quantizer
from fpq.run import kernel_check
from fpq.run.kernel_check import choose_kernels, self_check

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    monkeypatch.setattr(kernel_check, "_CHECKED", {})


def test_the_self_check_passes_in_the_interpreter():
    assert self_check(CPU, (torch.float32, torch.bfloat16)) is None


def test_a_cpu_run_takes_the_torch_path_without_asking_triton():
    assert choose_kernels("triton", CPU, (torch.float32,)) == ("torch", None)
    assert choose_kernels("torch", CPU, (torch.float32,), allow_cpu=True) == ("torch", None)
    assert kernel_check._CHECKED == {}


def test_kernels_that_pass_their_check_are_chosen_once_per_device_and_dtype():
    path, line = choose_kernels("triton", CPU, (torch.float32,), allow_cpu=True)
    assert path == "triton" and "self-check passed" in line
    assert choose_kernels("triton", CPU, (torch.float32,), allow_cpu=True)[1].endswith("earlier in this process)")


def test_a_kernel_that_disagrees_falls_back_to_the_torch_path_with_one_line(monkeypatch):
    real = ops.fake_quant

    def off_by_a_step(x, step, offset, *args, **kwargs):
        return real(x, step, offset, *args, **kwargs) + step.detach()

    monkeypatch.setattr(ops, "fake_quant", off_by_a_step)
    path, line = choose_kernels("triton", CPU, (torch.float32,), allow_cpu=True)
    assert path == "torch"
    assert line.startswith("kernels: torch path instead of triton (fake quant") and "values differ" in line


def test_a_kernel_that_fails_to_compile_falls_back_with_its_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("PTX assembly failed\n  in fake_quant_fwd_kernel")

    monkeypatch.setattr(ops, "fake_quant", broken)
    path, line = choose_kernels("triton", CPU, (torch.float32,), allow_cpu=True)
    assert path == "torch" and line == "kernels: torch path instead of triton (RuntimeError: PTX assembly failed in fake_quant_fwd_kernel)"


def test_no_triton_means_the_torch_path(monkeypatch):
    import fpq.kernels

    monkeypatch.setattr(fpq.kernels, "available", lambda: "Triton is not installed (it ships with the Linux torch wheels)")
    path, line = choose_kernels("triton", CPU, (torch.float32,), allow_cpu=True)
    assert path == "torch" and "Triton is not installed" in line


def test_the_speed_key_is_validated_and_not_part_of_a_runs_identity():
    from fpq.config import ConfigError, RunConfig, effective_dict

    with pytest.raises(ConfigError, match="runtime.kernels: 'cuda' is not one of"):
        RuntimeConfig(kernels="cuda")
    a = RunConfig("resnet20", "lsq", teacher="t.pt", runtime=RuntimeConfig(kernels="torch"))
    b = RunConfig("resnet20", "lsq", teacher="t.pt", runtime=RuntimeConfig(kernels="triton"))
    assert effective_dict(a) == effective_dict(b)
    assert RuntimeConfig().kernels == "triton"


def quantized_resnet20(method: str, x: torch.Tensor):
    torch.manual_seed(0)
    teacher = create_model("resnet20", 10).eval()
    student = copy.deepcopy(teacher)
    prepare_qat(student, 2, 4, METHODS[method].quantizer, 8, fused=True)
    calibrate(student, x)
    return student.train(), teacher


def test_set_kernels_reaches_every_quantizer_and_pact_keeps_its_torch_clip():
    x = torch.randn(2, 3, 16, 16)
    model, _ = quantized_resnet20("pact", x)
    count = set_kernels(model, "triton")
    quantizers = [m for m in model.modules() if isinstance(m, Quantizer)]
    assert count == len(quantizers) and all(q.kernels == "triton" for q in quantizers)
    pact = next(q for q in quantizers if isinstance(q, PactQuantizer))
    with_kernels = model(x)
    set_kernels(model, "torch")
    torch.testing.assert_close(with_kernels, model(x), rtol=1e-5, atol=1e-5)  # PACT alpha clip: torch in both
    assert pact.kernels == "torch"
    with pytest.raises(ValueError, match="kernels must be one of"):
        set_kernels(model, "cuda")


@pytest.mark.parametrize("method", ["lsq", "lsq+", "pact"])
def test_a_quantizer_on_the_triton_path_calls_the_kernel_op(method, monkeypatch):
    """Every LSQ, LSQ+ and min/max weight quantizer goes through `fpq::fake_quant` once a forward on
    the triton path, none on the torch path (PACT's activation clip never)."""
    x = torch.randn(2, 3, 16, 16)
    model, _ = quantized_resnet20(method, x)
    calls = []
    real = ops.fake_quant
    monkeypatch.setattr(ops, "fake_quant", lambda *a, **k: calls.append(1) or real(*a, **k))
    set_kernels(model, "torch")
    model(x)
    assert not calls
    set_kernels(model, "triton")
    model(x)
    kernel_quantizers = [q for q in model.modules() if isinstance(q, (LsqQuantizer, MinMaxWeightQuantizer))]
    assert kernel_quantizers and len(calls) == len(kernel_quantizers)


def test_the_hessian_path_switches_to_torch_and_back():
    x = torch.randn(2, 3, 16, 16)
    model, _ = quantized_resnet20("lsq", x)
    set_kernels(model, "triton")
    with kernel_path(model, "torch"):
        assert {q.kernels for q in model.modules() if isinstance(q, Quantizer)} == {"torch"}
        loss = model(x).square().mean()
        (g,) = torch.autograd.grad(loss, [next(model.parameters())], create_graph=True)
        g.sum().backward()  # a double backward: the torch path has one
    assert {q.kernels for q in model.modules() if isinstance(q, Quantizer)} == {"triton"}


@pytest.mark.slow  # trains ResNet-20 through the interpreter
@pytest.mark.parametrize("method", ["lsq+", "lsq+csd"])
def test_three_training_steps_through_the_kernels_equal_the_torch_path(method):
    """ResNet-20, W2A4, the same batches: the losses of 3 SGD steps within 1e-5 (LSQ+ covers the
    learned offset, LSQ+CSD the CSD kernels); the weights after them within float rounding. Fixed
    inputs and the paper's QAT rate: the two paths' sums differ in order, so a value that sits on a
    rounding boundary could still flip a level; with these inputs, on the CPU, nothing does."""
    gen = torch.Generator().manual_seed(42)
    x = torch.randn(4, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (4,), generator=gen)
    runs = {}
    for kernels in ("torch", "triton"):
        student, teacher = quantized_resnet20(method, x)
        set_kernels(student, kernels)
        objective = Objective(METHODS[method], QuantConfig(w_bits=2, a_bits=4), student, teacher, kernels=kernels)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
        losses = []
        for _ in range(3):
            optimizer.zero_grad()
            loss, _ = objective(x, y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        runs[kernels] = (losses, [p.detach().clone() for p in student.parameters()])
    (l_torch, w_torch), (l_triton, w_triton) = runs["torch"], runs["triton"]
    assert len(set(l_torch)) == 3  # the steps changed the model
    assert max(abs(a - b) for a, b in zip(l_torch, l_triton)) <= 1e-5
    assert max(float((a - b).abs().max()) for a, b in zip(w_torch, w_triton)) <= 1e-5


@pytest.mark.slow  # trains ResNet-20 through the interpreter
def test_fpq_trains_through_the_kernels_with_its_noise_inside():
    x = torch.randn(2, 3, 16, 16)
    y = torch.randint(0, 10, (2,))
    student, teacher = quantized_resnet20("fpq", x)
    layers = attach_sfp(student, 1.0)  # every layer's gate open: the noise must change the loss
    set_kernels(student, "triton")
    objective = Objective(METHODS["fpq"], QuantConfig(w_bits=2, a_bits=4, sfp_p=1.0), student, teacher, kernels="triton")
    torch.manual_seed(5)
    noisy, _ = objective(x, y)
    student.eval()
    clean, _ = objective(x, y)
    assert layers > 0 and torch.isfinite(noisy) and float(noisy.detach()) != float(clean.detach())
    student.train()
    noisy.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in student.parameters() if p.requires_grad)


@pytest.mark.slow  # trains ResNet-20 through the interpreter
def test_a_graphed_step_through_the_kernels_draws_everything_on_the_device(monkeypatch):
    """What a CUDA-graph capture needs of the kernel path, on the CPU: FPQ's whole step (SFP's gate
    and seed, the quantizers, CSD) with the capturable gate calls no `.item()` (a capture refuses a
    host sync), and replaying it through the stand-in graph equals the eager kernel step."""
    from fpq.run.step import TrainStep, set_capturable
    from tests.run.test_graph_step import ReplayByCall

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (2,), generator=gen)
    losses = {}
    for graph in (False, True):
        student, teacher = quantized_resnet20("fpq", x)
        attach_sfp(student, 0.5)
        set_kernels(student, "triton")
        set_capturable(student, True)
        objective = Objective(METHODS["fpq"], QuantConfig(w_bits=2, a_bits=4, sfp_p=0.5), student, teacher,
                              kernels="triton")
        optimizer = torch.optim.SGD(student.parameters(), lr=0.01)
        step = TrainStep(objective, optimizer, student, None, graph=graph, backend=ReplayByCall() if graph else None)
        torch.manual_seed(3)
        with monkeypatch.context() as m:
            m.setattr(torch.Tensor, "item", lambda self: pytest.fail("host sync in the kernel path's step"))
            losses[graph] = [step(x, y)[0].detach().clone() for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(losses[False], losses[True]))


def test_the_ops_trace_under_torch_compile():
    """torch.compile (aot_eager: the fake kernels trace the graph, autograd included) gives the
    eager op's values and gradients."""
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    step, offset = torch.tensor(0.3, requires_grad=True), torch.tensor(7.0)
    zt = torch.randn(2, 4, 6, 6)

    def loss(x, step):
        return ops.fake_quant(x, step, offset, 15, 0.1).square().mean() + ops.csd_layer(x, zt)

    torch._dynamo.reset()
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    got = compiled(x, step)
    want = loss(x, step)
    assert torch.equal(got, want)
    g_got, g_want = torch.autograd.grad(got, [x, step]), torch.autograd.grad(want, [x, step])
    assert all(torch.equal(a, b) for a, b in zip(g_got, g_want))
