"""The training loss of a method: CE plus each of its pieces' terms (KD, CSD, a plug-in's).

The pieces (`fpq.method.pieces`) say what the loss is made of; this module only runs the forward
passes they need (the student's, the frozen teacher's when a piece reads it, the taps a piece
reads on both) and adds the terms up. With `record` on, each term's value (and a piece's
per-tap detail, e.g. CSD's per-layer losses) is summed on the device step by step for the
epoch's loss composition (`take_parts`); off, the step does nothing more than the loss.

With `compile_mode` the whole loss (student forward with its SFP gates and taps, the teacher's
forward, the terms) is one `torch.compile`d function. Without it, the teacher's forward is
`fpq.method.teacher.TeacherForward` (no autograd state, bf16 weights, optionally a CUDA graph:
`teacher_cuda_graph`), and with `csd_compile` each term is compiled alone.
"""
from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from fpq.method.pieces import Outputs
from fpq.method.registry import MethodSpec
from fpq.method.teacher import TeacherForward, autocast_bf16
from fpq.models import FeatureTaps

CE = "ce"  # the name of the cross-entropy part in a loss composition


def compiled(fn, mode: str):
    """torch.compile with static shapes: a training step sees one batch shape (the loader drops
    the last partial batch when compiling), so no dynamic-shape recompile."""
    return torch.compile(fn, mode=mode, dynamic=False)


class LossSettings(Protocol):
    """A run's `quant` section (`fpq.config.QuantConfig`): each piece reads its own keys."""

    w_bits: int
    a_bits: int


class Objective:
    """loss(x, y) -> (loss, logits) for the student; one teacher forward per step when a piece needs it."""

    def __init__(self, spec: MethodSpec, quant: LossSettings, student: nn.Module, teacher: nn.Module | None, *,
                 student_bf16: bool = False, teacher_bf16: bool = False, compile_mode: str | None = None,
                 csd_compile: bool = False, teacher_cuda_graph: bool = False, step_graph: bool = False,
                 kernels: str = "torch"):
        if spec.uses_teacher_forward and teacher is None:
            raise ValueError(f"method {spec.name!r} needs a teacher")
        self.spec, self.quant, self.student = spec, quant, student
        self.teacher = teacher if spec.uses_teacher_forward else None
        self.student_bf16 = student_bf16  # the teacher's precision is its TeacherForward's
        self.kernels = kernels  # "triton": the terms' kernels (the student's quantizers are set apart)
        self.autocast_cache = True  # off for a CUDA-graph capture of the step (fpq.run.step.TrainStep)
        points = {p.tap_points(quant) for p in spec.parts} - {None}
        if len(points) > 1:
            raise ValueError(f"method {spec.name!r}: its pieces read different taps {sorted(points)}")
        point = points.pop() if points else None
        self.student_taps = FeatureTaps(student, point) if point else None
        self.teacher_taps = FeatureTaps(self.teacher, point) if point and self.teacher is not None else None
        # Inside a compiled loss or a CUDA graph of the whole step the teacher is part of that graph:
        # no separate capture (graphs do not nest), no nested compile.
        self.teacher_run = TeacherForward(self.teacher, self.teacher_taps, teacher_bf16,
                                          teacher_cuda_graph and not compile_mode and not step_graph
                                          ) if self.teacher is not None else None
        terms = [(p.name, p.make_term(quant, kernels)) for p in spec.parts]
        compile_terms = csd_compile and not compile_mode
        self.terms = [(name, compiled(t, "default") if compile_terms else t) for name, t in terms if t is not None]
        self.loss = compiled(self._loss, compile_mode) if compile_mode else self._loss
        self.record = False  # sum each part per step (`take_parts`); off inside a graph or a compiled step
        self._sums: dict[str, torch.Tensor] = {}
        self._steps = self._images = 0

    def teacher_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher_run(x)

    def parts(self, x: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, torch.Tensor], Outputs]:
        """Each part of the loss (CE first, then each term by piece name) and the forward's outputs;
        their sum, in this order, is `loss`."""
        with autocast_bf16(x, self.student_bf16, self.autocast_cache):
            logits = self.student(x)
        out = Outputs(logits, features=self.student_taps.outputs if self.student_taps else [], record=self.record)
        values = {CE: F.cross_entropy(logits.float(), y)}
        if self.teacher_run is not None:
            out.teacher_logits = self.teacher_forward(x)
            out.teacher_features = self.teacher_taps.outputs if self.teacher_taps else []
        for name, term in self.terms:
            values[name] = term(out)
        return values, out

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, out = self.parts(x, y)
        loss = values[CE]
        for name, _ in self.terms:
            loss = loss + values[name]
        if self.record:
            self._add({**values, **{f"{k}/taps": v for k, v in out.detail.items()}}, y.shape[0])
        return loss, out.logits

    def _add(self, values: dict[str, torch.Tensor], images: int) -> None:
        """Running sums, weighted by the batch's images as the epoch's train loss is: on the device,
        no host sync per step."""
        for name, value in values.items():
            value = value.detach().float() * images
            self._sums[name] = self._sums[name] + value if name in self._sums else value
        self._steps += 1
        self._images += images

    def take_parts(self) -> dict:
        """The mean of each part over the images of the steps recorded since the last call (per-tap
        parts as lists), and the count of steps; the sums start again."""
        steps, images = self._steps, self._images
        means = {k: (v / images).tolist() for k, v in self._sums.items()} if steps else {}
        self._sums, self._steps, self._images = {}, 0, 0
        return {"steps": steps, **means}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = [t for t in (self.student_taps, self.teacher_taps) if t is not None]
        for t in taps:
            t.start()
        try:
            return self.loss(x, y)
        finally:
            for t in taps:
                t.stop()
                t.outputs.clear()  # the graph keeps what backward needs; the list need not
