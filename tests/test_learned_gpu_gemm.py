"""The GEMM forest's columns and rows (gpu6): a forest picks its own features by name from its family's design,
the shipped GEMM forest leaves out the columns leave-one-GPU-out rejected, clock-collapsed rows are named by a
rule, and the biggest fp32 GEMMs of GPUs outside the data are not priced by those rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxenergy.hardware import load_profile
from fxenergy.perf.features import GEMM_FEATURES, GEMM_FOREST_DROPPED, forest_features
from fxenergy.perf.fitting import throttled
from fxenergy.perf.kernels import gemm_kernel
from fxenergy.perf.model import LearnedGPUModel, load_perf_params
from fxenergy.perf.trees import Forest


def _stump(features: tuple[str, ...], feature: int, threshold: float) -> Forest:
    return Forest({"features": list(features), "baseline": 0.0, "trees": [
        {"feature": [feature, 0, 0], "threshold": [threshold, 0.0, 0.0], "left": [1, 0, 0], "right": [2, 0, 0],
         "value": [0.0, -1.0, 1.0], "leaf": [False, True, True], "depth": 1}]})


def test_forest_picks_its_columns_by_name():
    f = _stump(("b", "c"), 1, 0.5)  # splits on "c"
    X = np.array([[9.0, 9.0, 0.0], [9.0, 9.0, 1.0]])  # columns a, b, c
    np.testing.assert_allclose(f.predict(X, ("a", "b", "c")), [-1.0, 1.0])
    np.testing.assert_allclose(f.predict(X[:, 1:]), [-1.0, 1.0])  # already the forest's own columns
    with pytest.raises(ValueError, match="not among"):
        f.predict(X, ("a", "b", "d"))


def test_shipped_gemm_forest_leaves_out_the_dropped_columns():
    params = load_perf_params()
    gemm, conv = params.forests["gemm"].features, params.forests["conv"].features
    assert gemm == forest_features("gemm") and not set(GEMM_FOREST_DROPPED) & set(gemm)
    assert conv == GEMM_FEATURES  # conv keeps every column


def test_throttled_rows_rule():
    devs = ["p4", "p4", "p100-pcie-16gb", "p100-pcie-16gb", "t4", "p100-pcie-16gb"]
    ops = ["linear", "bmm", "linear", "linear", "linear", "bmm"]
    kernel_s = np.array([1e-3, 1.0, 0.05, 0.2, 1.0, 0.5])
    assert throttled(devs, ops, kernel_s).tolist() == [True, False, False, True, False, False]


@pytest.mark.parametrize("device", ["l4", "h100-sxm", "a100-80gb-pcie"])
def test_big_fp32_gemms_of_unseen_gpus_stay_near_the_roofline(device):
    """Fitted on the clock-collapsed P4 rows, the forest priced an 8192^3 fp32 GEMM on an L4 at 5.8x its roofline;
    on the GPUs the data has, such GEMMs run at 1.15-1.7x (A100, V100, T4)."""
    ks = [gemm_kernel(1, 8192, 8192, 8192, torch.float32, bias=True),
          gemm_kernel(1, 32768, 10240, 2560, torch.float32, bias=True)]
    t, tb = LearnedGPUModel(load_profile(device)).kernel_durations_s(ks)
    assert np.all(t >= tb) and np.all(t / tb < 2.0), (t / tb).tolist()


@pytest.mark.parametrize("device", ["a100-80gb-pcie", "t4"])
@pytest.mark.parametrize("precision", ["highest", "high"])
def test_fused_attention_floor_is_the_checks_own_bound(device, precision):
    """A fused attention node is priced at least at the bound the physical check sums
    (passes.lower_bound.LowerBound), also when its matmuls run as 3xTF32."""
    import fxenergy
    from fxenergy.passes.lower_bound import LowerBound
    from fxenergy.records import COST, TRACE, get_record

    class Attention(torch.nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    q = torch.randn(4, 16, 1024, 64)
    r = fxenergy.annotate(Attention(), (q, q, q), hardware=device, predictor="learned", matmul_precision=precision)
    bound = LowerBound(load_profile(device))
    nodes = {n.name: n for n in r.graph_module.graph.nodes}
    rows = [row for row in r.rows if row.duration_s is not None]
    assert [row.node for row in rows] == ["scaled_dot_product_attention"]
    for row in rows:
        node = nodes[row.node]
        assert row.duration_s >= bound(get_record(node, COST), get_record(node, TRACE)) * (1 - 1e-12), row.node
