"""The optimizer step on CUDA: torch._foreach_* ops in multi_tensor_apply launches, not one kernel per parameter."""

from __future__ import annotations

import torch

from fxenergy.perf.kernels import FOREACH_CHUNK, foreach_launches, optimizer_period


def test_launches_follow_the_tensor_and_block_limits():
    assert foreach_launches([10] * 110, 1) == 1  # 110 tensors fit one depth-1 launch
    assert foreach_launches([10] * 111, 1) == 2
    assert foreach_launches([10] * 64, 2) == 1 and foreach_launches([10] * 65, 2) == 2
    assert foreach_launches([FOREACH_CHUNK * 320], 1) == 1  # 320 chunks: one full launch
    assert foreach_launches([FOREACH_CHUNK * 321], 2) == 2
    assert foreach_launches([FOREACH_CHUNK * 1000, 5, 5], 2) == 4


def test_period_of_a_single_tensor_update():
    assert optimizer_period(["mul_", "add_", "add_"] * 5) == 3
    assert optimizer_period(["mul_", "add_", "add_"] * 5 + ["mul_"]) is None
    assert optimizer_period(["add_"]) is None


class Many(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(40)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_optimizer_step_priced_as_foreach(monkeypatch):
    import fxenergy.perf.model as pm
    from fxenergy.analysis import analyse, predict
    from fxenergy.records import TRACE, get_record
    from fxenergy.resolve import resolve

    a = analyse(Many(), (torch.randn(8, 64),), mode="training", optimizer="sgd-momentum")
    opt = [n.name for n in a.graph_module.graph.nodes
           if get_record(n, TRACE) is not None and get_record(n, TRACE).phase == "optimizer"]
    assert len(opt) == 80 * 3  # 80 parameters x (mul_, add_, add_), recorded one call per node
    fe = predict(a, resolve("a100-80gb-pcie", "learned"))
    t_fe = sum(fe.duration_s[n] for n in opt)
    monkeypatch.setattr(pm.LearnedGPUModel, "_foreach_optimizer", lambda self, nodes, t, host_kernel=None: set())
    per = predict(a, resolve("a100-80gb-pcie", "learned"))
    t_per = sum(per.duration_s[n] for n in opt)
    floor = pm.load_perf_params().dispatch_floor_s
    assert t_per >= 240 * floor * 0.999  # one dispatch per parameter and statement
    assert t_fe < t_per / 10  # 3 statements x 2 launches (80 tensors > 64 per depth-2 launch) + 1
    assert t_fe >= 3 * floor  # at least one launch per statement
    assert all(fe.duration_s[n] > 0 for n in opt)


def test_training_batch_norm_is_two_passes():
    from fxenergy.perf.kernels import kernels_of_call
    from fxenergy.records import OpCall, TensorSpec

    x = TensorSpec((32, 64, 56, 56), torch.float32)
    c = TensorSpec((64,), torch.float32)
    fwd = OpCall(torch.ops.aten.native_batch_norm.default, (x, c, c, c, c, True, 0.1, 1e-5), {}, (x, c, c))
    ks = kernels_of_call(fwd, 0.0, 0.0, 2 * x.nbytes)
    assert [k.family for k in ks] == ["reduction", "elementwise"] and sum(k.bytes for k in ks) == 3 * x.nbytes
    bwd = OpCall(torch.ops.aten.native_batch_norm_backward.default, (x, x, c, c, c, c, c, True, 1e-5, [True] * 3), {},
                 (x, c, c))
    assert sum(k.bytes for k in kernels_of_call(bwd, 0.0, 0.0, 3 * x.nbytes)) == 5 * x.nbytes
    ev = OpCall(torch.ops.aten.native_batch_norm.default, (x, c, c, c, c, False, 0.1, 1e-5), {}, (x, c, c))
    assert len(kernels_of_call(ev, 0.0, 0.0, 2 * x.nbytes)) == 1  # eval: one element-wise pass


def _optimizer_calls(optimizer: str) -> list:
    from fxenergy.analysis import analyse
    from fxenergy.records import TRACE, get_record

    a = analyse(Many(), (torch.randn(8, 64),), mode="training", optimizer=optimizer)
    return [c for n in a.graph_module.graph.nodes if get_record(n, TRACE) is not None
            and get_record(n, TRACE).phase == "optimizer" for c in get_record(n, TRACE).calls]


def test_sgd_is_torch_optim_sgd_defaults():
    """``sgd`` is ``torch.optim.SGD(params, lr)``: no momentum, one in-place add of the gradient per parameter (what
    `fxenergy measure` runs and the A30 training rows of gpu-operators-nicolai measured); its update reads and
    writes 12 bytes per fp32 parameter, the momentum update 32."""
    from fxenergy.passes.costs import op_bytes

    plain, momentum = _optimizer_calls("sgd"), _optimizer_calls("sgd-momentum")
    assert [c.name for c in plain] == ["add_"] * 80
    assert [c.name for c in momentum] == ["mul_", "add_", "add_"] * 80
    n_params = sum(p.numel() for p in Many().parameters())
    moved = [sum(sum(op_bytes(c)[:2]) for c in calls) for calls in (plain, momentum)]
    assert moved == [12 * n_params, 32 * n_params]


def test_plain_sgd_priced_as_one_foreach_add():
    from fxenergy.analysis import analyse, predict
    from fxenergy.records import TRACE, get_record
    from fxenergy.resolve import resolve

    def opt_time(optimizer: str) -> float:
        a = analyse(Many(), (torch.randn(8, 64),), mode="training", optimizer=optimizer)
        p = predict(a, resolve("a30", "learned"))
        return sum(p.duration_s[n.name] for n in a.graph_module.graph.nodes
                   if get_record(n, TRACE) is not None and get_record(n, TRACE).phase == "optimizer")

    import fxenergy.perf.model as pm

    floor = pm.load_perf_params().floor_s("a30", "elementwise")  # the A30 setting's own floor of a launch
    plain, momentum = opt_time("sgd"), opt_time("sgd-momentum")
    # _foreach_add_(params, grads): 80 tensors in two depth-2 launches, far below 80 per-parameter dispatches
    assert 2 * floor * 0.999 <= plain < 10 * floor
    assert plain < momentum / 2  # one statement instead of three
