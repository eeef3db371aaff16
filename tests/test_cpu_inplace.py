"""In-place element-wise ops on a CPU (issue 12, sessions cpu11 and cpu12): their own kernel class ``inplace``, measured
by the calibration on a hot input and right after their producer, and priced as before (``elementwise``) by a file
without that class. The class is on by default since cpu12 (``INPLACE_CLASS``, see its docstring)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import fxenergy.perf.cpu as cpu
from fxenergy.calibrate.benches import benchmarks
from fxenergy.calibrate.fitting import fit_cpu_perf, measurement_class
from fxenergy.calibrate.timing import Measurement
from fxenergy.hardware import load_profile
from fxenergy.perf.cpu import INPLACE_BENCH_OPS, CpuDurationModel, kernel_class
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.testing import priced_nodes

PEAK_FLOPS, PEAK_BPS = 150e9, 80e9
COLD = PowerLaw(0.5, 1e-3, 1.0, "MB")  # out of place on cold inputs
HOT = PowerLaw(0.5, 1e-3, 1.0, "MB")


def _rows() -> list[Measurement]:
    out = []
    for n in (2**10, 2**16, 2**20, 2**22):
        for op, k, bps in (("relu", 1, 40e9), ("add", 2, 45e9), ("relu_", 1, 150e9), ("add_", 2, 180e9),
                           ("hardsigmoid_", 1, 70e9)):
            nbytes = 4 * n * (k + 1)
            out.append(Measurement("elementwise", op, ((n,),) * k, {}, 0, n, nbytes, nbytes / bps + 2e-6, 5, 10))
    return out


def _nodes(module: torch.nn.Module, shape: tuple[int, ...]):  # noqa: ANN202
    return priced_nodes(module, shape)


class _Act(torch.nn.Module):
    def __init__(self, inplace: bool):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2.0
        return torch.nn.functional.hardswish(y, inplace=self.inplace)


@pytest.fixture(autouse=True)
def _inplace_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "INPLACE_CLASS", True)


def test_default_prices_inplace_ops_by_their_class_and_the_switch_restores_elementwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the module's default, not the fixture's
    assert cpu.INPLACE_CLASS is True  # on since session cpu12
    (_, _), (trace, cost) = _nodes(_Act(True), (16, 72, 32, 32))
    assert cost.op == "hardswish_" and kernel_class(trace, cost) == "inplace"
    monkeypatch.setattr(cpu, "INPLACE_CLASS", False)
    assert kernel_class(trace, cost) == "elementwise"


def test_inplace_ops_have_their_class_and_activations_keep_theirs() -> None:
    for inplace, cls in ((True, "inplace"), (False, "elementwise")):
        (_, _), (trace, cost) = _nodes(_Act(inplace), (16, 72, 32, 32))
        assert cost.op.endswith("_") == inplace
        assert kernel_class(trace, cost) == cls
    (trace, cost), = _nodes(torch.nn.SiLU(inplace=True), (4, 8))  # an exponential per element: activation
    assert kernel_class(trace, cost) == "activation"


def test_calibration_measures_inplace_rows_hot_and_fits_their_curve() -> None:
    quick = [b for b in benchmarks(quick=True) if b.op in INPLACE_BENCH_OPS]
    assert {b.op for b in quick} == INPLACE_BENCH_OPS and all(b.hot for b in quick) and len(quick) >= 12
    assert not any(b.hot for b in benchmarks(quick=True) if b.op not in INPLACE_BENCH_OPS)
    rows = _rows()
    assert {measurement_class(m) for m in rows} == {"elementwise", "inplace"}
    perf = fit_cpu_perf(rows, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    assert {"elementwise", "inplace"} <= set(perf.laws)
    model = CpuDurationModel(load_profile("xeon-gold-5120"), 2, perf)
    (_, _), (trace, cost) = _nodes(_Act(True), (16, 72, 32, 32))  # 4.5 MiB, hardswish_: between relu_ and add_ rows
    t_in = model.node_duration(trace, cost, 1)[0]
    nbytes = cost.bytes_read + cost.bytes_written
    assert nbytes / 180e9 < t_in < nbytes / 70e9 * 1.2

    # a file without the class (older calibrations) prices the same node by the elementwise curve, as before
    old = CpuDurationModel(load_profile("xeon-gold-5120"), 2,
                           dataclasses.replace(perf, laws={k: v for k, v in perf.laws.items() if k != "inplace"}))
    t_old = old.node_duration(trace, cost, 1)[0]
    assert t_old == pytest.approx(nbytes / 42e9, rel=0.25)
    assert t_old > 2 * t_in


def test_rows_timed_after_their_producer_fit_the_class_less_the_producer() -> None:
    from fxenergy.calibrate.fitting import inplace_rows
    from fxenergy.perf.cpu import INPLACE_AFTER_PRODUCER

    quick = [b for b in benchmarks(quick=True) if b.op in INPLACE_AFTER_PRODUCER]
    bn = {tuple(map(tuple, b.shapes())) for b in benchmarks(quick=True) if b.op == "batch_norm"}
    assert len(quick) >= 12 and all(b.producer == "normalization" and not b.hot for b in quick)
    assert {tuple(map(tuple, b.shapes())) for b in quick} <= bn  # each pair has its producer's row
    rows, pairs = _rows(), []
    for n in (2**16, 2**18, 2**20, 2**22):  # batch norm at 30 GB/s, then relu_ at 100 GB/s on what it wrote
        shape = ((n // 64, 64, 1, 1), (64,), (64,), (64,), (64,))
        t_bn, t_relu = 8 * n / 30e9, 8 * n / 100e9
        rows.append(Measurement("normalization", "batch_norm", shape, {}, 0, 2 * n, 8 * n, t_bn, 5, 10))
        pairs.append(Measurement("elementwise", "relu_ after batch_norm", shape, {}, 0, n, 8 * n, t_bn + t_relu, 5, 10))
    rows.append(Measurement("elementwise", "relu_ after batch_norm", ((7, 7),), {}, 0, 49, 392, 1e-5, 5, 10))  # no producer
    fitted = inplace_rows(rows + pairs)
    inplace = [m for m in fitted if measurement_class(m) == "inplace"]
    assert {m.op for m in inplace} == {"relu_ after batch_norm"} and len(inplace) == 4  # the hot rows and the orphan out
    for m in inplace:
        assert m.bytes / m.median_s == pytest.approx(100e9, rel=1e-6)
    assert len([m for m in fitted if m.op == "batch_norm"]) == 4  # producers keep fitting their own class
    # a file with only hot rows (cpu11's) fits the class on them, as before
    assert {m.op for m in inplace_rows(_rows()) if measurement_class(m) == "inplace"} == INPLACE_BENCH_OPS
    perf = fit_cpu_perf(rows + pairs, PEAK_FLOPS, PEAK_BPS, threads=2, dispatch_s=2e-6)
    law = perf.laws["inplace"]
    t = float(law.duration_s(8 * 2**20, PEAK_BPS))
    assert t == pytest.approx(8 * 2**20 / 100e9, rel=0.2)
