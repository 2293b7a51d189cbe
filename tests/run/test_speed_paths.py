"""The CUDA speed paths (bf16 autocast, bf16 teacher, channels_last, torch.compile) run on CPU too,
so their code is exercised here; their speed is measured by bench/, never asserted."""
import math

import pytest
import torch

from fpq.config import load_config
from fpq.method.objective import Objective
from fpq.method.perturb import StochasticFeaturePerturbation
from fpq.method.pieces import Outputs
from fpq.method.registry import METHODS
from fpq.models import create_model
from fpq.quant.functional import fake_quant_fused, fake_quant_reference, pact_fused
from fpq.run.train import prepare_student, run
from tests.conftest import qat_config


@pytest.mark.parametrize("fn", [fake_quant_fused, fake_quant_reference])
@pytest.mark.parametrize("shift_before_round", [False, True])
def test_bf16_inputs_are_quantized_in_fp32(fn, shift_before_round):
    """Under autocast the activations arrive in bf16. An 8-bit grid with an offset puts x/s near
    300, where bf16 can only represent even numbers: round(x/s) - x/s (the step gradient) would be
    0 or +-2 instead of within +-0.5. Quantized in fp32, bf16 inputs give fp32's exact answer."""
    gen = torch.Generator().manual_seed(0)  # its own seed: the result must not hang on the test order
    x32 = (torch.rand(64, generator=gen) * 2 + 1.0).to(torch.bfloat16).float()  # values bf16 can hold exactly
    results = []
    for x in (x32.clone(), x32.to(torch.bfloat16)):
        x.requires_grad_(True)
        step = torch.tensor(0.01, requires_grad=True)
        offset = torch.tensor(-70.3 if shift_before_round else -70.0)
        y = fn(x, step, offset, 255, 1.0, shift_before_round)
        assert y.dtype == x.dtype
        (y.float() * torch.linspace(-1, 1, 64).bfloat16().float()).sum().backward()  # bf16-exact weights
        results.append((y.detach().float(), x.grad.float(), step.grad))
    (y32, gx32, gs32), (y16, gx16, gs16) = results
    assert torch.allclose(y16, y32, rtol=2 ** -8)  # only the final cast to bf16 differs
    assert torch.allclose(gx16, gx32, rtol=2 ** -8)
    # The step gradient sums round(u) - u over 64 elements with u = x/s - z near 300: in fp32 each term
    # carries ~|u| 2^-24 of rounding, and the fused kernel forms it as (out - x)/s from fp32 inputs but
    # from the levels for bf16 ones, so the two agree to 64 x 330 x 2^-23 = 2.5e-3 (measured up to
    # 1e-4 over 300 seeds), not to 1e-4 relative. A bf16 computation would be off by whole units per element.
    assert gs16.item() == pytest.approx(gs32.item(), abs=64 * 330 * 2 ** -23)


def test_pact_takes_bf16_inputs():
    x = (torch.rand(64) * 4 - 1).to(torch.bfloat16).requires_grad_(True)
    alpha = torch.tensor(2.5, requires_grad=True)
    y = pact_fused(x, alpha, torch.tensor(True), 255)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == torch.bfloat16 and alpha.grad.dtype == torch.float32
    ref = pact_fused(x.detach().float(), alpha.detach(), torch.tensor(True), 255)
    assert torch.allclose(y.float(), ref, rtol=2 ** -8)


def _fpq_student(arch="resnet20", **runtime):
    cfg = load_config({"arch": arch, "method": "fpq", "teacher": "t", "quant": {"w_bits": 2, "a_bits": 4, "sfp_p": 0.5},
                       "runtime": {"device": "cpu", **runtime}})
    torch.manual_seed(0)
    teacher = create_model(arch, 10)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():  # BN running stats of this batch, as a trained teacher's would fit its data
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        teacher.train()(x)
    teacher.eval()
    return cfg, teacher, prepare_student(cfg, teacher, x, torch.device("cpu")), x


@pytest.mark.parametrize("arch", ["resnet20", "mobilenetv2"])
def test_the_whole_fpq_loss_traces_as_one_graph(arch):
    """Student forward (SFP gates, CSD taps), the teacher's forward, CSD and CE stay inside one
    torch.compile graph (a break per layer would cost a launch gap per layer on the GPU, and a
    separate teacher graph a second launch stream); tracing only, no code generation."""
    cfg, teacher, student, x = _fpq_student(arch)
    objective = Objective(METHODS["fpq"], cfg.quant, student, teacher, student_bf16=True, teacher_bf16=True)
    student_feats, teacher_feats = objective.student_taps.start(), objective.teacher_taps.start()
    explained = torch._dynamo.explain(objective._loss)(x, torch.arange(8) % 10)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1
    convs = len(list(student.conv_layers()))
    assert len(student_feats) == len(teacher_feats) == convs  # the taps of both fired under tracing


def _fpq_loss_and_grads(**runtime):
    cfg, teacher, student, x = _fpq_student(**runtime)
    for m in student.modules():  # no SFP noise here: compare the deterministic part
        if isinstance(m, StochasticFeaturePerturbation):
            m.p = 0.0
    if cfg.runtime.channels_last:
        teacher, x = teacher.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    objective = Objective(METHODS["fpq"], cfg.quant, student, teacher, student_bf16=cfg.runtime.bf16,
                          teacher_bf16=cfg.runtime.teacher_bf16)
    loss, logits = objective(x, torch.arange(8) % 10)
    loss.backward()
    return loss, logits, {n: p.grad for n, p in student.named_parameters()}


def test_channels_last_is_a_layout_only():
    loss_a, _, grads_a = _fpq_loss_and_grads()
    loss_b, _, grads_b = _fpq_loss_and_grads(channels_last=True)
    assert loss_b.item() == pytest.approx(loss_a.item(), rel=1e-5)
    a, b = (torch.cat([g.flatten() for g in grads.values()]) for grads in (grads_a, grads_b))
    assert torch.nn.functional.cosine_similarity(a, b, dim=0).item() > 0.999


def test_the_bf16_step_reaches_every_parameter():
    """With bf16 student and teacher, the FPQ loss is near fp32's and every weight, step size and
    BN parameter gets a finite, nonzero gradient. (The gradient direction of a 2-bit net is chaotic
    in its inputs: fp32 with 2^-9 input noise differs from fp32 as much as bf16 does, so no
    direction is compared here; bench/policy_check.py compares trained accuracy instead.)"""
    loss32, _, _ = _fpq_loss_and_grads()
    loss, logits, grads = _fpq_loss_and_grads(bf16=True, teacher_bf16=True, channels_last=True)
    assert logits.dtype == torch.bfloat16
    assert loss.item() == pytest.approx(loss32.item(), rel=0.05)
    for name, g in grads.items():
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name


@pytest.mark.slow
def test_a_run_with_every_speed_key_trains_and_records_them(quick_teacher, mini_npz, tmp_path):
    cfg = qat_config(mini_npz, quick_teacher, "fpq", (2, 4), train=256, test=100)
    cfg["runtime"].update(bf16=True, teacher_bf16=True, channels_last=True, compile=True)
    cfg["hessian"] = {"every": 1, "probes": 2, "batch_size": 16}
    cfg["optim"].update(epochs=2, batch_size=96)
    m = run(load_config(cfg), tmp_path)
    p = m["precision"]
    assert (p["student_autocast"], p["teacher_autocast"], p["channels_last"], p["compile"]) == ("bf16", "bf16", True, True)
    assert math.isfinite(m["history"][0]["train_loss"]) and m["final"]["top1"] >= 0
    assert len(m["hessian_trajectory"]) == 3  # the trace runs on the uncompiled fp32 module
    # one batch shape per compiled step: 256 images in batches of 96 -> two full batches, 64 dropped
    assert [r["train_images"] for r in m["history"]] == [192, 192]
    assert m["compile_seconds"] > 0  # the first step and the first evaluation paid the compile, once


def test_cuda_speed_keys_apply_on_cuda_only():
    """A config can ask for the fast path on GPUs while its CPU runs stay fp32 eager (bitwise)."""
    cfg = load_config({"arch": "resnet20", "runtime": {"device": "cpu", "cuda": {
        "bf16": True, "compile": True, "compile_mode": "reduce-overhead"}}})
    on_cpu, on_cuda = cfg.runtime.on("cpu"), cfg.runtime.on("cuda")
    assert (on_cpu.bf16, on_cpu.compile) == (False, False)
    assert (on_cuda.bf16, on_cuda.compile, on_cuda.compile_mode) == (True, True, "reduce-overhead")
    assert on_cuda.channels_last is False  # a key the override leaves out keeps its plain value


@pytest.mark.parametrize("name", ["paper", "config", "reference"])
def test_the_shipped_configs_use_the_cuda_graph_step_on_cuda_and_stay_plain_on_the_cpu(name):
    """The fastest path measured including its build (bench/results/h200-2026-12-04): the CUDA
    graph, never a whole-step compile (minutes to build, per job)."""
    from pathlib import Path

    from fpq.plan.grid import expand, load_workflow_config

    config = load_workflow_config(Path(__file__).resolve().parents[2] / "config" / f"{name}.yaml")
    for run in expand(config).runs.values():
        rt = run.config.runtime
        assert rt.on("cuda").cuda_graph and rt.on("cuda").bf16 and not rt.on("cuda").compile
        assert not rt.on("cpu").cuda_graph and not rt.on("cpu").bf16 and not rt.on("cpu").compile


def test_fused_sgd_takes_the_same_steps_as_the_default_sgd():
    from fpq.run.train import make_optimizer

    params = []
    for fused in (False, True):
        cfg = load_config({"arch": "resnet20", "runtime": {"device": "cpu", "fused_optimizer": fused}})
        torch.manual_seed(0)
        model = create_model("resnet20", 10)
        opt, _ = make_optimizer(cfg, model)
        assert bool(opt.defaults.get("fused")) is fused
        for k in range(3):
            opt.zero_grad()
            model(torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(k))).square().mean().backward()
            opt.step()
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(params[0], params[1], rtol=1e-5, atol=1e-7)
    torch.manual_seed(0)
    init = torch.cat([p.detach().flatten() for p in create_model("resnet20", 10).parameters()])
    assert (params[0] - init).abs().max() > 1e-3  # the steps did move the weights


def test_compile_mode_is_checked_and_recorded():
    from fpq.config import ConfigError
    from fpq.run.provenance import precision_policy

    with pytest.raises(ConfigError, match="runtime.compile_mode"):
        load_config({"arch": "resnet20", "runtime": {"compile_mode": "fastest"}})
    cfg = load_config({"arch": "resnet20", "runtime": {"compile": True, "compile_mode": "reduce-overhead"}})
    assert precision_policy(cfg.runtime, torch.device("cpu"))["compile_mode"] == "reduce-overhead"


def _teacher_and_taps(channels_last=False):
    from fpq.models import FeatureTaps

    torch.manual_seed(0)
    teacher = create_model("resnet20", 10).eval()
    x = torch.randn(4, 3, 32, 32)
    if channels_last:
        teacher, x = teacher.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return teacher, FeatureTaps(teacher), x


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_prepared_teacher_gives_the_autocast_teachers_bits_with_no_autograd_state(channels_last):
    """bf16 weights cast once give what autocast gives by casting them at every forward, taps included."""
    import copy

    from fpq.method.teacher import TeacherForward, prepare_teacher

    teacher, taps, x = _teacher_and_taps(channels_last)
    fast = prepare_teacher(copy.deepcopy(teacher), channels_last=channels_last, bf16=True)
    fast_taps = type(taps)(fast)
    assert not any(p.requires_grad for p in fast.parameters()) and not fast.training
    assert fast.conv1.weight.dtype == torch.bfloat16 and fast.bn1.weight.dtype == torch.float32
    with taps.collect() as want_maps, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = teacher(x)
    with fast_taps.collect() as got_maps:
        got = TeacherForward(fast, fast_taps, bf16=True)(x)
    assert got.grad_fn is None and all(m.grad_fn is None for m in got_maps)
    assert torch.equal(got, want)
    assert len(got_maps) == len(want_maps) == len(list(teacher.conv_layers()))
    assert all(torch.equal(a, b) for a, b in zip(got_maps, want_maps))


def test_the_teacher_cuda_graph_key_is_ignored_off_cuda():
    """On CPU the key selects nothing: the eager forward runs, no capture, the same outputs."""
    from fpq.method.teacher import TeacherForward

    teacher, taps, x = _teacher_and_taps()
    graphed, eager = TeacherForward(teacher, taps, cuda_graph=True), TeacherForward(teacher, taps)
    assert not graphed.uses_graph(x)
    with taps.collect() as maps_g:
        out_g = graphed(x)
    with taps.collect() as maps_e:
        out_e = eager(x)
    assert graphed.graph is None and graphed.replays == 0
    assert torch.equal(out_g, out_e) and len(maps_g) == len(maps_e) > 0


def test_the_teacher_graph_serves_the_captured_batch_shape_only():
    """Path selection for CUDA inputs, without a GPU: stand-ins carry only what `uses_graph` reads."""
    from types import SimpleNamespace

    from fpq.method.teacher import TeacherForward

    run = TeacherForward(torch.nn.Identity(), None, cuda_graph=True)
    batch = SimpleNamespace(is_cuda=True, shape=(256, 3, 32, 32), dtype=torch.float32, stride=lambda: (1, 2, 3, 4),
                            device="cuda:0")
    assert run.uses_graph(batch)  # not captured yet: the first full batch will be
    run.static = (batch, None, [])
    assert run.uses_graph(SimpleNamespace(**{**vars(batch)}))
    last = SimpleNamespace(**{**vars(batch), "shape": (80, 3, 32, 32)})
    assert not run.uses_graph(last)  # the epoch's last partial batch runs eager
    assert not TeacherForward(torch.nn.Identity(), None, cuda_graph=False).uses_graph(batch)


def test_the_speed_keys_reach_the_objective_and_a_compiled_step_overrides_them(monkeypatch):
    from fpq.method import distill
    from fpq.run.train import make_objective

    calls = []
    monkeypatch.setattr(distill, "csd_layers", lambda *a, **kw: calls.append(a[-1]) or [torch.zeros(())])

    def objective(kernels="torch", **runtime):
        cfg, teacher, student, _ = _fpq_student(**runtime)
        return make_objective(cfg, student, teacher, kernels=kernels)

    def compiled(obj) -> bool:
        return hasattr(dict(obj.terms)["csd"], "_torchdynamo_orig_callable")

    plain = objective()
    assert [name for name, _ in plain.terms] == ["csd"] and not compiled(plain) and not plain.teacher_run.cuda_graph
    triton = objective("triton")  # the path fpq.run.kernel_check chose reaches CSD
    dict(triton.terms)["csd"](Outputs(None, features=[torch.zeros(1, 1, 1, 1)]))
    assert calls[-1] == "triton" and triton.kernels == "triton"
    keyed = objective(csd_compile=True, teacher_cuda_graph=True)
    assert compiled(keyed) and keyed.teacher_run.cuda_graph  # compiled lazily: nothing built yet
    whole = objective(csd_compile=True, teacher_cuda_graph=True, compile=True)
    assert not compiled(whole) and not whole.teacher_run.cuda_graph  # inside the one compiled graph
    cfg = load_config({"arch": "resnet20", "runtime": {"cuda": {"csd_compile": True, "teacher_cuda_graph": True}}})
    assert not cfg.runtime.on("cpu").csd_compile and cfg.runtime.on("cuda").teacher_cuda_graph
