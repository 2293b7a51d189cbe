"""The CUDA-graph step (runtime.cuda_graph) on the CPU: everything but the capture itself.

`ReplayByCall` stands in for a CUDA graph: its capture runs the function once (as a capture
followed by its first replay does on CUDA), and each replay calls the function again on the
captured static inputs and writes the results into the captured outputs. So the wrapper's own
logic (warm-up count, the copy of each batch into the static inputs, outputs read from the static
tensors, other shapes eager, a failed capture falling back) runs here, and a training run through
it must equal the eager run bit for bit. The GPU half (graph against eager on CUDA) is a row of
bench/gpu_harness.sh.
"""
import pytest
import torch

from fpq.config import effective_json, load_config, resume_identity
from fpq.method.perturb import StochasticFeaturePerturbation
from fpq.models import create_model
from fpq.run.graph import Graphed
from fpq.run.step import EvalForward, TrainStep, graph_line, graph_report
from fpq.run.train import make_objective, make_optimizer, prepare_student


class ReplayByCall:
    def __init__(self):
        self.captures = self.replays = 0

    def warmup(self, fn, inputs):
        return fn(*inputs)

    def capture(self, fn, inputs):
        self.fn, self.inputs, self.fresh = fn, inputs, True
        self.out = fn(*inputs)
        self.captures += 1
        return self.out

    def replay(self):
        self.replays += 1
        if self.fresh:  # the capture's own call was this replay's work
            self.fresh = False
            return
        new = self.fn(*self.inputs)
        with torch.no_grad():
            for static, value in zip(self.out, new):
                static.copy_(value)


class FailingCapture(ReplayByCall):
    def capture(self, fn, inputs):
        raise RuntimeError("operation not permitted when stream is capturing")


def _setup(method="fpq", sfp_p=1.0, seed=1):
    torch.manual_seed(0)
    teacher = create_model("resnet20", 10).eval()
    calib = torch.randn(16, 3, 32, 32)
    cfg = load_config({"arch": "resnet20", "method": method, "teacher": "t.pt",
                       "quant": {"w_bits": 2, "a_bits": 4, "sfp_p": sfp_p}, "runtime": {"device": "cpu"}})
    torch.manual_seed(seed)
    student = prepare_student(cfg, teacher, calib, torch.device("cpu"))
    objective = make_objective(cfg, student, teacher)
    optimizer, _ = make_optimizer(cfg, student)
    return cfg, student, objective, optimizer


def _batches(n=7, batch=4):
    gen = torch.Generator().manual_seed(5)
    return [(torch.randn(batch, 3, 32, 32, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
            for _ in range(n)]


def _train(graph: bool, backend=None, method="fpq", sfp_p=1.0, batches=None):
    cfg, student, objective, optimizer = _setup(method, sfp_p)
    step = TrainStep(objective, optimizer, student, None, graph=graph, backend=backend)
    torch.manual_seed(7)
    losses = []
    for x, y in batches or _batches():
        loss, logits = step(x, y)
        losses.append((loss.detach().clone(), logits.detach().clone()))
    return student, losses, step


@pytest.mark.parametrize("method", ["lsq", "fpq"])  # fpq: CE + SFP + the teacher + CSD
def test_a_replayed_step_equals_the_eager_step_bit_for_bit(method):
    """Losses, logits and the weights after 7 steps: 3 warm-up, 1 capture, 3 replays. SFP at p = 1
    draws the same stream either way on the CPU (its gate, then its noise)."""
    eager_model, eager, _ = _train(False, method=method)
    backend = ReplayByCall()
    graph_model, graphed, step = _train(True, backend, method=method)
    assert backend.captures == 1 and backend.replays == 4 and step.graph.warm_calls == 3
    for (l1, z1), (l2, z2) in zip(eager, graphed):
        assert torch.equal(l1, l2) and torch.equal(z1, z2)
    for a, b in zip(eager_model.state_dict().values(), graph_model.state_dict().values()):
        assert torch.equal(a, b)


def test_each_batch_is_copied_into_the_static_input():
    """A replay that forgot the copy would train on the captured batch again: different losses."""
    _, graphed, _ = _train(True, ReplayByCall())
    assert len({round(float(l), 6) for l, _ in graphed[3:]}) == 4


def test_another_shape_runs_eagerly_and_the_graph_stays():
    batches = _batches(6) + [(torch.randn(3, 3, 32, 32), torch.randint(0, 10, (3,)))] + _batches(2)
    eager_model, eager, _ = _train(False, batches=batches)
    backend = ReplayByCall()
    graph_model, graphed, step = _train(True, backend, batches=batches)
    assert backend.captures == 1 and step.graph.replays == 5  # steps 4, 5, 6, 8, 9 (the 3-image step eager)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(eager, graphed))


def test_a_failed_capture_says_why_once_and_trains_on_eagerly_with_the_same_results():
    lines = []
    eager_model, eager, _ = _train(False)
    cfg, student, objective, optimizer = _setup()
    step = TrainStep(objective, optimizer, student, None, graph=True, log=lines.append, backend=FailingCapture())
    torch.manual_seed(7)
    graphed = [step(x, y)[0].detach().clone() for x, y in _batches()]
    assert len(lines) == 1 and "capture failed, running eagerly" in lines[0] and "capturing" in lines[0]
    assert all(torch.equal(a[0], b) for a, b in zip(eager, graphed))
    report = graph_report(step, EvalForward(student, False))
    assert report["train"]["captured"] is False and "capturing" in report["train"]["failure"]
    assert "eager (RuntimeError" in graph_line(report)


def test_the_test_forward_replays_too():
    cfg, student, *_ = _setup()
    student.eval()
    xs = [torch.randn(10, 3, 32, 32) for _ in range(4)]
    want = [student(x).float() for x in xs]
    graphed = EvalForward(student, False, graph=True, backend=ReplayByCall())
    got = [graphed(x).clone() for x in xs]
    assert graphed.graph.captured and graphed.graph.replays == 3  # one warm-up, then capture + replays
    assert all(torch.equal(a, b) for a, b in zip(want, got))


def test_the_capturable_sfp_gate_is_bernoulli_p_without_a_host_sync(monkeypatch):
    """Inside a graph the per-layer gate is a device tensor: no `.item()` (a capture refuses the
    sync), fires with probability p, and the noise stays in [-s/2, s/2]."""
    sfp = StochasticFeaturePerturbation(0.3).train()
    sfp.capturable = True
    monkeypatch.setattr(torch.Tensor, "item", lambda self: pytest.fail("host sync in a capturable SFP"))
    torch.manual_seed(0)
    x, step = torch.zeros(64), torch.tensor(0.5)
    fired = 0
    for _ in range(4000):
        out = sfp.perturb(x, step)
        assert out.abs().max() <= 0.25
        fired += bool((out != 0).any())
    assert abs(fired / 4000 - 0.3) < 4 * (0.3 * 0.7 / 4000) ** 0.5


def test_graphed_keeps_the_signature_it_was_warmed_up_for():
    calls = []
    g = Graphed(lambda x: (calls.append(x.shape) or x * 2,), "double", ReplayByCall(), warmup=1)
    for x in (torch.ones(2), torch.ones(2), torch.ones(3), torch.full((2,), 3.0)):
        out = g(x)[0]
        assert torch.equal(out, x * 2)
    assert g.captured and g.replays == 2 and g.report()["replays"] == 2


def test_speed_keys_are_not_part_of_a_runs_identity():
    """Turning a speed key on or off never reruns a finished run nor refuses a resume."""
    base = {"arch": "resnet20", "method": "lsq", "teacher": "t.pt", "quant": {"w_bits": 2, "a_bits": 4}}
    plain = load_config(base)
    for runtime in ({"cuda_graph": True}, {"compile": True, "compile_mode": "reduce-overhead"},
                    {"teacher_cuda_graph": True, "csd_compile": True},
                    {"cuda": {"cuda_graph": True, "teacher_cuda_graph": True}}, {"cuda": {"compile": True}}):
        fast = load_config({**base, "runtime": runtime})
        assert effective_json(fast) == effective_json(plain)
        for device in ("cpu", "cuda"):
            assert resume_identity(fast, device) == resume_identity(plain, device)
    # what changes the numbers stays in the identity
    assert effective_json(load_config({**base, "runtime": {"bf16": True}})) != effective_json(plain)


def test_cuda_graph_and_compile_are_one_or_the_other():
    from fpq.errors import ConfigError

    with pytest.raises(ConfigError, match="runtime.cuda_graph: cuda_graph and compile are both on"):
        load_config({"arch": "resnet20", "runtime": {"compile": True, "cuda_graph": True}})
    with pytest.raises(ConfigError, match="runtime.cuda.cuda_graph"):
        load_config({"arch": "resnet20", "runtime": {"compile": True, "cuda": {"cuda_graph": True}}})
    cfg = load_config({"arch": "resnet20", "runtime": {"cuda": {"compile": False, "cuda_graph": True}, "compile": True}})
    assert cfg.runtime.on("cuda").cuda_graph and not cfg.runtime.on("cpu").cuda_graph
