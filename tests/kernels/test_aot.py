"""Every kernel specialisation a training launches compiles ahead of time for sm_80, sm_86, sm_89
and sm_90 through Triton's ptxas, with no spill and vector loads where the data is aligned
(bench/kernel_aot.py; no GPU needed). The checks themselves are tested on made-up rows."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.bench_scripts import BENCH, load_bench
from tests.kernels import NO_TRITON

if NO_TRITON:
    pytest.skip(NO_TRITON, allow_module_level=True)

aot = load_bench("kernel_aot")


@pytest.mark.slow  # records ResNet-20's and MobileNetV1's steps, then about 150 compiles (2-4 min)
def test_every_recorded_specialisation_compiles_for_every_generation(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # the tests' interpreter is off here
    out = subprocess.run([sys.executable, str(BENCH / "kernel_aot.py"), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "aot.json").read_text())
    specs, rows = report["specs"], report["rows"]
    assert {s["kernel"] for s in specs} == set(aot.KERNELS)
    assert len(rows) == len(specs) * len(aot.ARCHS) and not report["problems"]
    assert {r["arch"] for r in rows} == set(aot.ARCHS) and all(r["registers"] > 0 for r in rows)
    noise = {s["constexprs"]["NOISE"] for s in specs if s["kernel"] == "fake_quant_fwd_kernel"}
    assert noise == {0, 1, 2}  # no SFP, SFP after and before the quantizer: each its own kernel
    assert any(s["constexprs"].get("s_sc") == 1 for s in specs)  # channels_last's CSD: C is the unit stride
    assert any(r["aligned"] and r["widest_load"] == 128 for r in rows)
    md = (tmp_path / "aot.md").read_text()
    assert "| fake_quant_fwd_kernel | sm_90 |" in md and "Roofline" in md


def row(**extra):
    return {"kernel": "k", "arch": "sm_90", "spec": "fp32", "registers": 40, "spill_bytes": 0, "aligned": True,
            "element_bits": 32, "widest_load": 128, **extra}


def test_the_check_fails_on_an_error_a_spill_and_scalar_loads_of_aligned_data():
    assert aot.problems([row()]) == []
    assert "ptxas failed" in aot.problems([row(error="ptxas failed (255)")])[0]
    assert "spills 8 bytes" in aot.problems([row(spill_bytes=8)])[0]
    assert "one element at a time (32 bits)" in aot.problems([row(widest_load=32)])[0]
    assert aot.problems([row(widest_load=32, aligned=False)]) == []  # unaligned data may load narrow
    assert aot.problems([row(widest_load=32, element_bits=16)]) == []  # two bf16 at once


def spec(kernel, signature, attrs, constexprs=None):
    return {"kernel": kernel, "signature": signature, "attrs": attrs, "constexprs": constexprs or {}}


def test_aligned_reads_the_arguments_that_address_the_big_tensors():
    fq = {"x_ptr": "*fp32", "out_ptr": "*fp32", "per_channel": "i32", "qmax": "i32"}
    assert aot.aligned(spec("fake_quant_fwd_kernel", fq, {"x_ptr": "D", "out_ptr": "D", "per_channel": "D"}))
    assert not aot.aligned(spec("fake_quant_fwd_kernel", fq, {"x_ptr": "D", "out_ptr": "D"}))  # a row of odd length
    csd = {"zs_ptr": "*bf16", "C": "i32", "HW": "i32", "s_sn": "i32", "s_sc": "constexpr", "s_shw": "i32"}
    nhwc = spec("csd_moments_kernel", csd, {"zs_ptr": "D", "C": "D", "s_sn": "D", "s_shw": "D"}, {"s_sc": 1})
    assert aot.aligned(nhwc)  # HW is not the unit-stride bound in channels_last: 7 x 7 is fine
    assert not aot.aligned({**nhwc, "attrs": {"zs_ptr": "D", "HW": "D", "s_sn": "D", "s_shw": "D"}})  # C odd
    assert not aot.aligned({**nhwc, "signature": {**csd, "s_sc": "i32"}, "constexprs": {}})  # no unit stride


def test_occupancy_follows_the_register_limit():
    assert aot.occupancy("sm_90", 32, 4, 0) == 1.0  # 32 registers: 16 blocks of 4 warps fill 64 warps
    assert aot.occupancy("sm_90", 163, 4, 0) == 0.188  # 168 a thread (rounded per warp): 3 blocks, 12 warps
    assert aot.occupancy("sm_86", 163, 4, 0) == 0.25  # the same 12 warps of 48
    assert aot.occupancy("sm_90", 32, 4, 200 * 1024) == 0.062  # shared memory for one block only
