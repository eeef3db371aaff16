"""CPU duration and package-power models: spec-sheet by default, calibrated where measured.

Durations (per node, eager PyTorch, one op at a time, ``threads`` intra-op threads)::

    t = launches x dispatch_s + max(t_compute, t_memory)

* ``t_compute = flops / (peak(threads) x eta_class(flops))`` for contraction ops. ``peak(threads)``
  = effective cores x fp32 SIMD lanes x 2 (FMA) x FMA units x sustained clock, effective cores
  being ``min(threads, physical cores)`` (SMT threads add no FMA units). ``eta_class`` is a seed 004
  power law ``eta_max (1 - exp(-k c**alpha))`` per *kernel class*: dense, 1x1 (pointwise), grouped
  and depthwise convolutions are separate classes, since grouped/depthwise ones run far below dense
  efficiency on CPUs (DESIGN.md). Element-wise FLOPs run at a quarter of the vector peak.
* ``t_memory = bytes moved / bandwidth(level)``: the bytes run at the bandwidth of the level of the
  memory hierarchy the node's working set (bytes read + written) fits in, placed as seed 003 places
  working sets (:func:`fxenergy.predictors.cache.levels_of`; the smallest level that holds it, a
  per-core cache counting once per effective core). Cache levels' bandwidths per core are
  spec-style figures in bytes/cycle (:data:`LEVEL_BYTES_PER_CYCLE`); DRAM is the profile's figure,
  capped at :data:`DRAM_BYTES_PER_S_PER_CORE` per effective core (one core cannot keep enough
  misses in flight to draw a socket's bandwidth). Eager ops reach :data:`MEMORY_EFFICIENCY` of it.
* ``dispatch_s`` is PyTorch's fixed per-op cost on CPU (profile figure; measured by calibration).

With calibrated parameters (:class:`CpuPerfParams`, written by ``fxenergy calibrate``) each kernel
class has its own measured power law over its work (FLOPs, or bytes for memory-bound classes),
measured on cold inputs at the calibration's thread count; the cache term stays as a floor (a node
cannot beat the bandwidth of the level its working set sits in) and durations at another thread
count are scaled by the spec model's ratio between the two thread counts. An output larger than
the allocator's mmap threshold (:data:`MMAP_THRESHOLD_BYTES`, not written in place) adds its bytes x
the calibration's measured page-fault cost per byte: such a tensor is a fresh ``mmap`` on every
call and its first touch faults page by page, in models as in the calibration's microbenchmarks
(whose durations are fitted with that time taken off).

Package power (:class:`CpuPowerModel`)::

    P = idle_w + core_w x active cores x (busy + (1 - busy) x u)

``idle_w`` is the package's floor (uncore, idle cores); ``core_w`` the dynamic power of one busy
core; ``u`` the node's roofline utilisation (roofline-bound time / duration); ``busy`` the share a
core draws merely by running (eager PyTorch keeps it in C0 between ops). The figure is the
**package** (what RAPL's package domain and a TDP describe): no DRAM, no wall.

NB: the spec-sheet constants below are assumptions, partly derived from two CPUs' measurements
(:data:`SPEC_EFFICIENCY`: the level of large GEMMs stays stated, classes are set relative to it where two CPUs agree,
or where only one CPU measured them); every estimate that uses them says so in its notes, and docs/validation.md
gives their measured error.

>>> from fxenergy.hardware import load_profile
>>> m = CpuDurationModel(load_profile("xeon-gold-5120"), threads=2)
>>> round(m.spec.peak_flops / 1e9)  # 2 cores x 16 lanes x 2 x 1 FMA unit x 2.2 GHz
141
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from fxenergy.errors import UserInputError
from fxenergy.hardware.detect import CPU_W_PER_CORE_GUESS as W_PER_CORE_GUESS
from fxenergy.passes.families import FAMILIES, work_for
from fxenergy.passes.ops import family_of
from fxenergy.predictors.hef_law import PowerLaw
from fxenergy.records import NodeCost, NodeTrace, TensorSpec

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = [
    "KERNEL_CLASSES", "kernel_class", "conv_class", "local_thread_info", "CpuSpec", "cpu_spec", "CpuPerfParams", "CpuDurationModel",
    "CpuPowerModel", "default_threads", "SPEC_LAWS", "SPEC_EFFICIENCY", "SPEC_EFFICIENCY_STATED", "SPEC_RAMP", "spec_memory_factor", "cgroup_cpu_quota", "fresh_output_bytes",
    "MMAP_THRESHOLD_BYTES", "HEAP_FAULT_SHARE", "HEAP_FAULT_SHARE_LONG_LIVED", "heap_fault_share", "ALLOCATOR_STATE", "ALLOCATOR_STATES", "split_calls",
    "LAYOUT_OPS", "LAYOUT_BENCH_OPS", "INPLACE_BENCH_OPS", "INPLACE_AFTER_PRODUCER", "INPLACE_CLASS", "SPLIT_MIXED_NODES", "GROUPED_OVERLAP_P", "grouped_time_s",
    "class_basis", "conv_reorder_bytes", "conv_uses_onednn", "conv_weight_fault_bytes", "conv_fault_bytes", "WEIGHT_REORDER_FAULTS",
]

CONV_CLASSES = ("conv_dense", "conv_stem", "conv_pointwise", "conv_grouped", "conv_depthwise")
STEM_MAX_IN_CHANNELS = 4
"""A dense convolution reading at most this many input channels (an image's RGB: a network's stem or
ViT's patchify) is its own class: with a reduction of only ``Cin x k x k`` per output it runs at a
fraction of the efficiency of the network's later dense convolutions (11-130 GFLOP/s against
70-160 on this project's 2-core VM), and one curve for both fits neither."""
ACTIVATION_OPS = frozenset({"gelu", "silu", "sigmoid", "mish", "elu", "selu", "softplus", "exp", "erf", "log"})
"""Element-wise ops that evaluate an exponential-like function per element: on this project's VM they
stream 14-17 GB/s where add / mul / relu / hardswish (a clamp and a multiply) stream 33-55 (quick
calibration, 4M elements), so they are their own class, ``activation`` (in-place variants such as
``silu_`` included). ``tanh`` is slower still (4-5 GB/s) and has a class of its own, ``tanh``."""
LAYOUT_OPS = frozenset({"clone", "roll"})
"""Layout copies: ``clone`` is how eager PyTorch materialises a permuted or expanded view (``.contiguous()``, a
``reshape`` of a transposed tensor: attention heads, Swin/MaxViT window partitions, NCHW <-> NHWC), and ``roll``
(Swin's shifted windows) is a gather along two axes. They read with a stride, not as one stream: the quick
calibration's permute / transpose copies move 5-15 GB/s on this project's VM where ``cat`` and embedding
gathers of the same bytes move 20-66, so they are their own class, ``layout`` (measured by the calibration's
``contiguous``, ``permute NCHW->NHWC`` and ``roll`` benchmarks; ``embedding`` stands in for older files)."""
INPLACE_CLASS = True
"""True prices a cheap element-wise op written in place (``relu_``, ``add_``, ``hardswish_``: an element-wise op whose
name ends in ``_`` and that is not in the ``activation`` or ``tanh`` classes) by the ``inplace`` class (a calibration
file without that class prices it by ``elementwise`` as before). Session cpu11 added the class off by default: the
``elementwise`` curve (cold inputs) prices these ops 1.6-2.6x slow in whole development models, but its hot-loop rows
(:data:`INPLACE_BENCH_OPS`) priced them 0.54-1.09x and whole models did not improve, the overprice offsetting stems and
reductions priced too fast. **On by default since session cpu12**, which prices stems and reductions with an output-byte
term (:data:`fxenergy.calibrate.fitting.OUTPUT_TERM_CLASSES`) and fits the class on ``relu_`` timed right after the
batch norm that wrote its input (:data:`INPLACE_AFTER_PRODUCER`): on the same timings, the class on lowered the median
error of every development set tried by 0.3-1.7 points (docs/validation.md, cpu12's section). False restores the
``elementwise`` pricing (ablations)."""
SPLIT_MIXED_NODES = True
"""Price a node whose calls span several kernel classes call by call (:func:`split_calls`); False restores the
pricing of the whole node by its largest call's class (for ablations)."""
LAYOUT_BENCH_OPS = frozenset({"contiguous", "permute NCHW->NHWC", "roll"})
"""Labels of the calibration's microbenchmarks (:mod:`fxenergy.calibrate.benches`) that measure the ``layout`` class."""
INPLACE_BENCH_OPS = frozenset({"relu_", "add_", "hardsigmoid_"})
"""Labels of the calibration's microbenchmarks that measure the ``inplace`` class: cheap element-wise ops written
into their input, timed on a hot input (no fresh copies between calls), as a network runs them right after the op
that wrote that input. On this project's VM (session cpu11, ``benchmarks/cpu_inplace_micro.py``, 1 Dec 05:35 UTC) an
in-place ``relu_`` / ``add_`` on a hot 4-7 MiB tensor streamed 150-225 GB/s (2x bytes) where the out-of-place op on
cold inputs, the ``elementwise`` rows of the calibration, streamed 40-50: the input comes from the cache its producer
left it in, and nothing is allocated or first touched. The same in-place ops on cold inputs ran at the cold rate
(40-57 GB/s), so the gain is the input's residency, not the op."""
INPLACE_AFTER_PRODUCER = {"relu_ after batch_norm": "batch_norm"}
"""Labels of the calibration's microbenchmarks that time an in-place op right after the op that wrote its input (label
-> the producer's own benchmark label, timed on the same shapes): the fit takes the producer's time and work off and
fits the ``inplace`` class on what is left, in preference to the hot rows of :data:`INPLACE_BENCH_OPS` (session cpu12).
A network runs ``relu_`` / ``add_`` / ``hardswish_`` right after a batch norm or a convolution wrote the tensor, which
leaves it less hot than a loop over one tensor does: cpu11 measured ``relu_`` after a ``batch_norm`` at 64-205 GB/s
(median ~95) where the hot loop ran 146-225 (``benchmarks/cpu_inplace_micro.py``)."""
_CLASS_FALLBACK = {"conv_stem": "conv_dense", "activation": "elementwise", "tanh": "activation",
                   "layout": "embedding", "inplace": "elementwise"}
"""The class whose curve (or scale) stands in where a parameter set has none for a class (older files)."""
KERNEL_CLASSES = ("matmul", "bmm", *CONV_CLASSES, "normalization", "softmax", "reduction", "pooling",
                  "embedding", "elementwise", "activation", "tanh", "layout", "inplace")
"""Kernel classes: the op families of :mod:`fxenergy.passes.families`, with convolutions split by kind."""
_COMPUTE = {"matmul", "bmm", *CONV_CLASSES}

# spec-sheet assumptions (stated in notes and docs/validation.md) --------------------------------
LEVEL_BYTES_PER_CYCLE = {"L1": None, "L2": 32.0, "L3": 16.0}
"""Sustained load bandwidth per core (bytes/cycle); L1 is two vector loads per cycle (None = from SIMD)."""
DRAM_BYTES_PER_S_PER_CORE = 10e9
MEMORY_EFFICIENCY = 0.5
VECTOR_EFFICIENCY = 0.25
FMA_UNITS_ASSUMED = 2
SIMD_BITS_ASSUMED = 256
BUSY_SHARE = 0.75
IDLE_FRACTION_ASSUMED = 0.25

MMAP_THRESHOLD_BYTES = 32 * 2**20
"""glibc's largest dynamic mmap threshold on 64-bit Linux: a CPU tensor larger than this is a fresh
``mmap`` on every allocation, and the op that first writes it pays a page fault per page (measured by
``fxenergy calibrate`` as ``fault_s_per_byte``: about 0.45 ms per MiB on this project's VM, 10x the
time of streaming the bytes). Smaller tensors reuse heap memory freed by earlier ops."""

HEAP_FAULT_MIN_BYTES = 2**20
HEAP_TRIM_BYTES = 2 * MMAP_THRESHOLD_BYTES
HEAP_FAULT_SHARE = 0.21
"""Expected share of the bytes of fresh outputs between :data:`HEAP_FAULT_MIN_BYTES` (1 MiB) and the mmap
threshold that fault in again on every forward pass. Such outputs come from the heap, and glibc returns
the heap's free top to the system whenever it exceeds its trim threshold (twice the mmap threshold: 64 MiB
once a process has freed a tensor over 32 MiB, as after a calibration), so the next pass faults those
pages in again. Which outputs land there depends on the heap's layout, which this model does not simulate;
it charges the expected share. Measured with ``resource.getrusage().ru_minflt`` around a warm forward pass
(after a 64 MiB tensor was allocated and freed) on 11 development models that are not cases of
benchmarks/cpu_latency.py: the 5 whose fresh 1..32 MiB outputs total over the trim threshold per pass
faulted 0.00-0.38 of those bytes (mnasnet1_0 b8 0.38, resnet50 b8 0.29, efficientnet_b1 b8/192 0.17,
regnet_y_800mf b16/128 0.10, mobilenet_v2 b8 0.00; pooled 0.21); the 6 under it faulted none (hence
:func:`heap_fault_share`). Time only; faulted bytes are priced at the calibration's ``fault_s_per_byte``.

Correction (session cpu9): a freed 64 MiB tensor does NOT raise glibc's thresholds (glibc raises its mmap
threshold, and the trim threshold to twice it, only on freeing an mmapped chunk of at most 32 MiB), so the
measurement above was of a process whose thresholds sat below their maximum, i.e. the state of a fresh
process (:data:`ALLOCATOR_STATE` ``"fresh"``). In the process of ``benchmarks/cpu_latency.py`` (an
in-process quick calibration first) 12 development models faulted 0 of 67-237 MiB of such outputs per pass,
and with the thresholds pinned at 32 / 64 MiB (``mallopt``) 5 of them faulted none either."""

HEAP_FAULT_SHARE_LONG_LIVED = 0.036
"""Expected share of the fresh 1..32 MiB outputs that fault in again on every pass in a process that has already
built and run other models and did NOT calibrate: the process of issue 12's check and of
``benchmarks/cpu_latency.py --cli-calibration`` (``fxenergy calibrate --quick`` in its own process, then models
timed one after another in one Python process). Measured (session cpu10, ``benchmarks/cpu_process_history.py
--mode history``) on 12 development cases that are not benchmark cases (mobile nets at batch 4-16, EfficientNet,
MNASNet, RegNetY, ResNets), timed after 20 or 5 other development models, in three processes: pooled 195 of
5418 MiB of such outputs faulted per pass (0.036; 31 of 36 rows faulted none, 5 faulted 0.03-0.29). The same 12
cases in fresh interpreters faulted 0.242 (cpu4's :data:`HEAP_FAULT_SHARE` 0.21 holds there), after an in-process
calibration none. The cause: the models before it have raised glibc's dynamic mmap threshold to its 32 MiB
maximum (``malloc`` probe: nothing below 32 MiB is mmapped) and left a heap of 400-540 MiB with 190-350 MiB free,
so most outputs reuse heap chunks instead of the heap top that glibc trims. Outputs over 32 MiB still faulted
0.81 of their bytes in that state (one graph, 3 processes: mobilenet_v2 b8/224, 73-147 of 147 MiB); they are
charged in full, as in the fresh state."""

ALLOCATOR_STATES = ("calibrated", "fresh", "long-lived")
ALLOCATOR_STATE = "long-lived"
"""State of glibc's allocator in the process that runs the model, for :func:`heap_fault_share`:

* ``"long-lived"`` (default since session cpu10): a process that built and ran other models before this one and
  did not calibrate in-process: :data:`HEAP_FAULT_SHARE_LONG_LIVED` of its 1..32 MiB outputs fault per pass.
  This is the process of issue 12's check (models timed one after another in one Python process after
  ``fxenergy calibrate --quick`` ran in its own) and of a notebook or service that runs several models.
* ``"fresh"``: a new process running this one model (thresholds below their maximum): :data:`HEAP_FAULT_SHARE`.
  ``benchmarks/cpu_latency.py --fresh-process`` predicts in this state.
* ``"calibrated"``: a process that ran a calibration itself (or freed a tensor of about 32 MiB and holds a large
  free heap): no heap faults. ``benchmarks/cpu_latency.py`` with its in-process calibration predicts in this state.

Measured on this project's VM (docs/validation.md, sessions cpu4, cpu9 and cpu10). Session 7 made ``"fresh"`` the
default for the issue's protocol; cpu10 measured that protocol's process on development cases and it faults far
less than a fresh one (0.036 against 0.242 of the same cases' bytes)."""

GROUPED_OVERLAP_P = 2.0
"""A grouped convolution (calibrated) costs ``(t_mem**p + t_fma**p)**(1/p)``: ``t_mem`` a power law over the
bytes of its activations (oneDNN's grouped path pays per element, whatever the group width: on this
project's 2-core VM a 3x3 grouped conv of group width 8, 16 or 24 takes nearly the same time at a given
tensor size, 2-4 ns per output element), ``t_fma`` its FLOPs at the per-group kernel's FMA rate
(:attr:`CpuPerfParams.grouped_flops_per_s`, near the dense kernels' rate), which dominates from group width
~32 on. The two partly overlap: on 119 grouped 3x3 convolutions (group width 8..64, batch 1..16, 7..56 px;
shapes of RegNet and ResNeXt stages) fitted on half of them, p = 2 predicted the other half at
9% median / 40% worst error, the sum (p = 1) at 11% / 43%, the max (p = inf, a roofline) at 11% / 65%, and
one FLOP power law at 18% / 70%. A FLOP curve fitted on group width 8 alone (the calibration before
session cpu7) priced widths 16..64 about twice too slow (median +111%): RegNetX and ResNeXt were
over-predicted. (Fitted on 60 of the 119 shapes, 4 of 11 channel/size families; probe: /tmp, not shipped.)
Used where a parameter set has ``grouped_flops_per_s``; ``fxenergy calibrate`` fits it only with
:data:`fxenergy.calibrate.fitting.GROUPED_BYTES_AND_FMA` on (off by default: on whole models the FLOP law,
fitted on the same group widths 8..48, was closer)."""


def grouped_time_s(mem_s: Any, fma_s: Any) -> Any:
    """Duration of a grouped convolution from its activation-bytes term and its FMA term
    (:data:`GROUPED_OVERLAP_P`); works on floats and numpy arrays.

    >>> round(grouped_time_s(3.0, 4.0), 6)
    5.0
    """
    p = GROUPED_OVERLAP_P
    return (mem_s**p + fma_s**p) ** (1.0 / p)


SPEC_RAMP = (3.0, 0.5)
"""``(k, alpha)`` of the spec-sheet curves of the compute-bound classes (over GFLOP): how fast a kernel ramps up to its
class's efficiency (26% of it at 10 MFLOP, 61% at 100 MFLOP, 95% at 1 GFLOP). Stated, not fitted: the data of
:data:`SPEC_EFFICIENCY` (one or two CPUs) do not identify a ramp that transfers between CPUs."""
SPEC_EFFICIENCY_STATED: Mapping[str, float] = {
    "matmul": 0.80, "bmm": 0.50, "conv_dense": 0.70, "conv_stem": 0.70, "conv_pointwise": 0.60, "conv_grouped": 0.30,
    "conv_depthwise": 0.10, **{c: MEMORY_EFFICIENCY for c in KERNEL_CLASSES if c not in _COMPUTE}}
"""The hand-stated spec-sheet efficiencies used up to session 13 (assumptions, never measured); kept for comparison
(``scripts/fit_cpu_spec.py`` reports them beside the derived ones)."""
SPEC_EFFICIENCY: Mapping[str, float] = {
    # derived by scripts/fit_cpu_spec.py from scripts/data/cpu_spec_rows.json.gz (session cpu19, 1 Dec 2026): CPU A = this
    # project's 2-core EPYC VM (six quick calibrations), CPU B = seed 000's Xeon Gold 5120 at 2 threads (its AlexNet/VGG
    # layers and random layer configs); each class relative to matmul, at matmul's stated 0.80 (see the script)
    "matmul": 0.80,  # anchor: stated
    "softmax": 0.185, "pooling": 0.0354, "elementwise": 0.366, "inplace": 1.0,  # both CPUs (inplace capped at 1)
    "bmm": 0.861, "conv_grouped": 0.624, "conv_depthwise": 0.502, "normalization": 0.218, "reduction": 0.162,
    "embedding": 0.416, "layout": 0.122,  # CPU A only (B has no rows of these classes)
    "conv_dense": 0.70, "conv_stem": 0.70, "conv_pointwise": 0.60, "activation": 0.50, "tanh": 0.50,  # stated: the CPUs disagree
}
"""Spec-sheet efficiency of each kernel class on a CPU nobody calibrated: for the compute-bound classes (GEMMs and
convolutions) the fraction of the spec peak FLOP/s a large kernel reaches (``eta_max`` of :data:`SPEC_LAWS`); for the
memory-bound classes the fraction of the spec bandwidth of the level the node's working set sits in (their element-wise
FLOP term is slowed alike). Derived from two CPUs' measurements by ``scripts/fit_cpu_spec.py`` (its docstring; figures
in docs/validation.md, session cpu19's section): the level is the stated 0.80 for large GEMMs (the two CPUs run at
~1.0x and ~0.5x of their spec peaks, so no level transfers), the other classes relative to it where the data support
it (``tests/test_cpu_spec_efficiency.py`` re-derives these figures)."""
SPEC_LAWS: Mapping[str, PowerLaw] = {c: PowerLaw(SPEC_EFFICIENCY[c], *SPEC_RAMP, "GFLOP") for c in sorted(_COMPUTE)}
"""Spec-sheet efficiency curves of the compute-bound classes (fraction of peak over GFLOPs): an uncalibrated CPU's
``eta_max (1 - exp(-k c**alpha))``, ``eta_max`` from :data:`SPEC_EFFICIENCY`, ``(k, alpha)`` :data:`SPEC_RAMP`."""


def spec_memory_factor(cls: str) -> float:
    """Factor on the spec-sheet time of a memory-bound class: the levels' bandwidths in :class:`CpuSpec` are
    :data:`MEMORY_EFFICIENCY` of the spec figures, the class runs at its own :data:`SPEC_EFFICIENCY` of them (1 for
    compute-bound classes, whose memory term keeps :data:`MEMORY_EFFICIENCY`).

    >>> spec_memory_factor("conv_dense")
    1.0
    """
    if cls in _COMPUTE:
        return 1.0
    return MEMORY_EFFICIENCY / SPEC_EFFICIENCY.get(cls, MEMORY_EFFICIENCY)


def cgroup_cpu_quota(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """CPUs the cgroup quota allows (``quota / period``), or None when unlimited or unreadable."""
    try:
        quota, period = open(path).read().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def default_threads(profile: HardwareProfile) -> int:
    """Threads a run uses by default: torch's intra-op thread count on a detected (local or
    calibrated) CPU, else every physical core of the profile (what torch would use there)."""
    if profile.name.endswith("-detected") or "calibrated" in profile.display_name:
        return torch.get_num_threads()
    return int(profile.compute_units)


def conv_class(weight_shape: Any, groups: int) -> str:
    """Kernel class of a convolution from its weight shape ``(out, in/groups, k...)`` and ``groups``."""
    cin = int(weight_shape[1]) * groups
    if groups > 1 and groups == cin:
        return "conv_depthwise"
    if groups > 1:
        return "conv_grouped"
    if all(int(k) == 1 for k in weight_shape[2:]):
        return "conv_pointwise"
    return "conv_stem" if cin <= STEM_MAX_IN_CHANNELS else "conv_dense"


def fresh_output_bytes(trace: NodeTrace | None, threshold: int = MMAP_THRESHOLD_BYTES) -> int:
    """Bytes of the outputs this node's op calls allocate afresh above ``threshold`` (the allocator's
    mmap threshold): the outputs of calls that neither write in place nor return a view.

    >>> fresh_output_bytes(None)
    0
    """
    if trace is None:
        return 0
    total = 0
    for call in trace.calls:
        try:
            if any(r.alias_info is not None for r in call.op._schema.returns):
                continue  # in place (relu_) or a view: nothing allocated
        except AttributeError:
            continue
        outs = call.out if isinstance(call.out, (tuple, list)) else (call.out,)
        total += sum(o.nbytes for o in outs if isinstance(o, TensorSpec) and o.nbytes > threshold)
    return total


def conv_reorder_bytes(trace: NodeTrace | None, threshold: int = MMAP_THRESHOLD_BYTES) -> int:
    """Bytes of the blocked-layout copies a CPU convolution makes of its input and its output, counting each
    copy larger than ``threshold``: oneDNN runs an NCHW convolution (dense, 1x1, grouped or depthwise) on
    copies in its blocked layout, fresh buffers on every call, so above the mmap threshold they fault page by
    page like the output does. Measured with ``resource.getrusage().ru_minflt`` around one warm call (a
    64 MiB tensor allocated and freed first, as in a calibration): 3x3 dense, depthwise and grouped (width 8)
    convolutions with 36.8 MiB inputs and outputs faulted 110.3 MiB each, i.e. input + output + output,
    where :func:`fresh_output_bytes` counts the output once.

    >>> conv_reorder_bytes(None)
    0
    """
    return _trace_conv_faults(trace, 0, threshold)[0]


WEIGHT_REORDER_FAULTS = True
"""Charge the page faults of oneDNN's blocked copy of a convolution's weights (:func:`conv_weight_fault_bytes`);
False turns the term off (ablation)."""
ONEDNN_MIN_BATCH1_NUMEL = 20480
"""PyTorch (aten ``ConvParams::use_mkldnn``, fp32 on CPU) runs a batch-1, ungrouped convolution with kernels of
at most 3x3 and at most this many input elements on its native im2col + GEMM path, not on oneDNN."""


def conv_uses_onednn(input_shape: Any, weight_shape: Any, *, stride: Any = (1, 1), dilation: Any = (1, 1),
                     groups: int = 1, threads: int = 0) -> bool:
    """Whether eager PyTorch runs this fp32 CPU convolution on oneDNN (``mkldnn_convolution``) rather than
    its native path (``thnn_conv2d``: im2col + GEMM on the weights as they are); PyTorch's own rule, checked
    with torch.profiler on 1024 -> 1024 3x3 convolutions: batch 1 at 2x2 and 4x4 px native, at 5x5 and
    8x8 px oneDNN, batch 4 at 2x2 px oneDNN. ``threads`` 0 = unknown (taken as more than one).

    >>> conv_uses_onednn((1, 1024, 4, 4), (1024, 1024, 3, 3)), conv_uses_onednn((1, 1024, 5, 5), (1024, 1024, 3, 3))
    (False, True)
    """
    n, numel = int(input_shape[0]), math.prod(int(d) for d in input_shape)
    kernel = [int(k) for k in weight_shape[2:]]
    strided = any(int(v) != 1 for v in stride)
    dilated = any(int(v) != 1 for v in dilation)
    if not (strided or dilated or n >= 16 or any(k != 1 for k in kernel) or threads != 1):
        return False
    return groups > 1 or all(k > 3 for k in kernel) or n > 1 or numel > ONEDNN_MIN_BATCH1_NUMEL


def conv_weight_fault_bytes(trace: NodeTrace | None, threads: int = 0, threshold: int = MMAP_THRESHOLD_BYTES) -> int:
    """Bytes of the blocked-layout copy of a convolution's weights that oneDNN makes on every call, where that
    copy is at least ``threshold`` (glibc serves a request of the mmap threshold or more with a fresh
    ``mmap``): it faults page by page on every call, like a large output. Eager PyTorch does not keep
    oneDNN's blocked weights between calls. Measured with ``resource.getrusage().ru_minflt`` around one warm
    call: a 1024 -> 1024 3x3 convolution (36 MiB of weights) on oneDNN faulted 36.0 MiB per call (batch 1 at
    5x5 and 8x8 px, batch 4 and 16 at 2x2 px) and took 25-34 ms, on the native path (batch 1 at 2x2 and 4x4 px)
    0-0.3 MiB and 4.6-7.4 ms; a 4096 -> 2048 1x1 (32.0 MiB) faulted 32.0 MiB, a 640 -> 640 3x3 (14 MiB) none.
    Wide ResNets' last stage (1024 -> 1024 3x3) is the case in torchvision.

    >>> conv_weight_fault_bytes(None)
    0
    """
    return _trace_conv_faults(trace, threads, threshold)[1]


def conv_fault_bytes(input_shape: Any, weight_shape: Any, *, input_bytes: int, output_bytes: int, weight_bytes: int,
                     stride: Any = (1, 1), dilation: Any = (1, 1), groups: int = 1, threads: int = 0,
                     threshold: int = MMAP_THRESHOLD_BYTES) -> tuple[int, int]:
    """``(copies, weights)``: the bytes of one convolution call's faulting oneDNN copies, its input's and its
    output's (each over ``threshold``: :func:`conv_reorder_bytes`) and its weights' (at least ``threshold``, on
    oneDNN: :func:`conv_weight_fault_bytes`). The one rule the duration model charges and the calibration's fit
    (:func:`fxenergy.calibrate.fitting.fault_s`) takes off its rows.

    >>> conv_fault_bytes((1, 1024, 8, 8), (1024, 1024, 3, 3), input_bytes=2**18, output_bytes=2**18, weight_bytes=2**25 + 2**22)
    (0, 37748736)
    """
    copies = sum(b for b in (input_bytes, output_bytes) if b > threshold)
    weights = weight_bytes if weight_bytes >= threshold and conv_uses_onednn(
        input_shape, weight_shape, stride=stride, dilation=dilation, groups=groups, threads=threads) else 0
    return copies, weights


def _trace_conv_faults(trace: NodeTrace | None, threads: int, threshold: int) -> tuple[int, int]:
    """:func:`conv_fault_bytes` summed over the convolution calls of ``trace``."""
    copies = weights = 0
    for call in trace.calls if trace is not None else ():
        a = call.args
        if call.name not in ("convolution", "_convolution") or len(a) < 2 or not (
                isinstance(a[0], TensorSpec) and isinstance(a[1], TensorSpec)):
            continue
        outs = call.out if isinstance(call.out, (tuple, list)) else (call.out,)
        c, w = conv_fault_bytes(
            a[0].shape, a[1].shape, input_bytes=a[0].nbytes, weight_bytes=a[1].nbytes,
            output_bytes=sum(o.nbytes for o in outs if isinstance(o, TensorSpec)),
            stride=a[3] if len(a) > 3 and isinstance(a[3], (tuple, list)) else (1,),
            dilation=a[5] if len(a) > 5 and isinstance(a[5], (tuple, list)) else (1,),
            groups=int(a[8]) if len(a) > 8 else 1, threads=threads, threshold=threshold)
        copies, weights = copies + c, weights + w
    return copies, weights


def heap_bytes(trace: NodeTrace | None) -> int:
    """Bytes of fresh outputs of this node that come from the heap and may fault on every pass: between
    :data:`HEAP_FAULT_MIN_BYTES` and :data:`MMAP_THRESHOLD_BYTES` (:data:`HEAP_FAULT_SHARE`)."""
    return fresh_output_bytes(trace, HEAP_FAULT_MIN_BYTES) - fresh_output_bytes(trace, MMAP_THRESHOLD_BYTES)


def heap_fault_share(traces: Iterable[NodeTrace | None], state: str | None = None) -> float:
    """:data:`HEAP_FAULT_SHARE` (``"fresh"`` state) or :data:`HEAP_FAULT_SHARE_LONG_LIVED` (``"long-lived"``, the
    default) for a graph whose heap outputs (:func:`heap_bytes`) total more than the heap's trim threshold per pass
    (:data:`ALLOCATOR_STATE`);
    else 0 (a heap that never frees that much at its top is never trimmed, and a process whose glibc thresholds
    are at their maximum, as after a calibration, was measured to fault none of these bytes).

    >>> heap_fault_share([None])
    0.0
    """
    state = ALLOCATOR_STATE if state is None else state
    if state not in ALLOCATOR_STATES:
        raise ValueError(f"allocator state {state!r}: expected one of {', '.join(ALLOCATOR_STATES)}")
    if state == "calibrated":
        return 0.0
    share = HEAP_FAULT_SHARE_LONG_LIVED if state == "long-lived" else HEAP_FAULT_SHARE
    return share if sum(heap_bytes(t) for t in traces) > HEAP_TRIM_BYTES else 0.0


def kernel_class(trace: NodeTrace, cost: NodeCost) -> str:
    """The kernel class of a node: its op family, convolutions split into dense / pointwise (1x1) /
    grouped / depthwise by the ``convolution`` call's weight shape and ``groups`` argument."""
    fam = family_of(cost.op)
    if fam in ("attention_score", "attention_output"):
        return "bmm"
    if fam == "elementwise" and cost.op.rstrip("_") in ACTIVATION_OPS:
        return "activation"
    if fam == "elementwise" and cost.op.rstrip("_") == "tanh":
        return "tanh"
    if cost.op in LAYOUT_OPS:
        return "layout"
    if fam == "elementwise" and cost.op.endswith("_") and INPLACE_CLASS:
        return "inplace"
    if fam != "convolution":
        return fam
    for call in trace.calls:
        if call.name in ("convolution", "_convolution") and len(call.args) > 1:
            return conv_class(call.args[1].shape, int(call.args[8]) if len(call.args) > 8 else 1)
    return "conv_dense"


@dataclass(frozen=True, slots=True)
class CpuSpec:
    """Spec-sheet figures of a CPU running ``threads`` threads (see the module docstring)."""

    threads: int
    cores: int  # effective cores: min(threads, physical cores)
    peak_flops: float  # fp32 FLOP/s over the effective cores
    levels: tuple[tuple[str, float, float], ...]  # (name, capacity bytes, bytes/s), fastest first, DRAM last
    dispatch_s: float
    notes: tuple[str, ...] = ()

    def level_of(self, working_set_bytes: float) -> tuple[str, float]:
        """``(level, bytes/s)`` of the smallest level holding ``working_set_bytes``."""
        for name, cap, bw in self.levels:
            if working_set_bytes <= cap:
                return name, bw
        return self.levels[-1][0], self.levels[-1][2]


def cpu_spec(profile: HardwareProfile, threads: int) -> CpuSpec:
    """:class:`CpuSpec` of ``profile`` at ``threads`` threads."""
    if threads < 1:
        raise UserInputError(f"threads must be a positive integer, got {threads}")
    notes = []
    cores = max(1, min(int(threads), int(profile.compute_units)))
    bits = profile.simd_width_bits
    if bits is None:
        bits = SIMD_BITS_ASSUMED
    fma = profile.fma_units_per_core or None
    # NB: sustained vector code runs at the all-core (AVX) clock, not at the single-core maximum turbo
    # that ``clock_hz`` holds; where no all-core figure is published the base clock stands for it.
    clock = profile.sustained_clock_hz or profile.base_clock_hz or profile.clock_hz
    if fma is None:
        # the profile's fp32 peak over all cores implies the FMA units where SIMD width is known
        implied = profile.peak_flops_for(torch.float32) / (profile.compute_units * (bits // 32) * 2 * clock)
        fma = max(1, round(implied)) if profile.simd_width_bits else FMA_UNITS_ASSUMED
        if profile.simd_width_bits is None:
            notes.append(f"{profile.name}: SIMD width and FMA units not in the profile; {SIMD_BITS_ASSUMED}-bit, "
                         f"{FMA_UNITS_ASSUMED} FMA units assumed")
    peak = cores * (bits // 32) * 2 * fma * clock
    levels = []
    for c in profile.caches:
        per_cycle = LEVEL_BYTES_PER_CYCLE.get(c.level)
        per_cycle = 2 * bits / 8 if per_cycle is None else per_cycle
        cap = c.size_bytes * (min(cores, c.instances) if c.shared_by in ("core", "sm") else c.instances)
        levels.append((c.level, float(cap), per_cycle * clock * cores * MEMORY_EFFICIENCY))
    dram = min(float(profile.memory_bandwidth_bytes_per_s), DRAM_BYTES_PER_S_PER_CORE * cores) * MEMORY_EFFICIENCY
    levels.append(("DRAM", math.inf, dram))
    return CpuSpec(int(threads), cores, float(peak), tuple(levels), float(profile.kernel_launch_overhead_s),
                   tuple(notes))


@dataclass(frozen=True)
class CpuPerfParams:
    """Calibrated kernel-class curves of one CPU (what ``fxenergy calibrate`` measures).

    ``laws`` maps a kernel class to a :class:`PowerLaw` over FLOPs (compute classes) or bytes
    moved (memory classes), relative to ``peak_flops`` / ``peak_bytes_per_s``; ``threads`` is the
    intra-op thread count the measurements ran with; ``dispatch_s`` the measured per-op cost.
    ``scales`` maps a kernel class to a factor on the spec-sheet duration instead (one number per
    class: what a fit on a narrow range of sizes can identify, where a three-parameter law cannot).
    ``fault_s_per_byte`` is the measured first-touch cost of an output above
    :data:`MMAP_THRESHOLD_BYTES` (0 in files written before it was measured).
    ``dram_bytes_per_s`` is the measured DRAM copy bandwidth (bytes read + written per second; it
    replaces the spec-sheet DRAM level of the cache floor) and ``weight_bytes_per_s`` the rate at
    which a batch-1 linear layer (a GEMV) streams its cold weights (median of the calibration's
    batch-1 linears over 1 MiB); ``weight_law`` the same as a power law over weight bytes (relative
    to ``peak_bytes_per_s``), used where present: a compute-class node never runs faster than its
    weights stream (a FLOP-based curve cannot tell a GEMV from a GEMM of the same FLOPs).
    ``packing_s_per_byte`` is what a batched linear layer (more than one row: a GEMM) pays per
    weight byte on top of its FLOP curve (the BLAS repacks the weights on every call), fitted jointly
    with the matmul curve. ``out_s_per_byte`` maps a class (stems, reductions:
    :data:`fxenergy.calibrate.fitting.OUTPUT_TERM_CLASSES`) to what it pays per output byte on top of its
    law, fitted jointly with it; ``weight_s_per_byte`` likewise per weight byte (dense convolutions:
    :data:`fxenergy.calibrate.fitting.WEIGHT_TERM_CLASSES`) and ``act_s_per_byte`` per activation byte (bytes read
    and written less the weights; 1x1 convolutions: :data:`fxenergy.calibrate.fitting.ACTIVATION_TERM_CLASSES`) above
    ``act_free_bytes`` of them (what the fit found a cache holds free of the term).
    0 / None / empty = not measured (older files).
    """

    laws: Mapping[str, PowerLaw]
    peak_flops: float
    peak_bytes_per_s: float
    threads: int
    dispatch_s: float
    fitted_on: Mapping[str, Any] = field(default_factory=dict)
    scales: Mapping[str, float] = field(default_factory=dict)
    fault_s_per_byte: float = 0.0
    dram_bytes_per_s: float = 0.0
    weight_bytes_per_s: float = 0.0
    weight_law: PowerLaw | None = None
    packing_s_per_byte: float = 0.0
    grouped_flops_per_s: float = 0.0  # FMA rate of grouped convs; with it, laws["conv_grouped"] is over bytes
    out_s_per_byte: Mapping[str, float] = field(default_factory=dict)  # class -> s per output byte, on top of its law
    weight_s_per_byte: Mapping[str, float] = field(default_factory=dict)  # class -> s per weight byte, on top of its law
    act_s_per_byte: Mapping[str, float] = field(default_factory=dict)  # class -> s per activation byte, on top of its law
    act_free_bytes: Mapping[str, float] = field(default_factory=dict)  # class -> activation bytes free of that term

    def per_byte_s(self, cls: str, *, weight_bytes: float, out_bytes: float, act_bytes: float) -> float:
        """Seconds kernel class ``cls`` pays on top of its law for its bytes: per output byte (stems, reductions),
        per weight byte (dense convolutions), per activation byte above its free amount (1x1 convolutions); 0 for
        a class with none of these terms. ``act_bytes``: bytes read and written less the weights."""
        return (out_bytes * self.out_s_per_byte.get(cls, 0.0) + weight_bytes * self.weight_s_per_byte.get(cls, 0.0)
                + max(act_bytes - self.act_free_bytes.get(cls, 0.0), 0.0) * self.act_s_per_byte.get(cls, 0.0))

    def to_dict(self) -> dict[str, Any]:
        out = {"laws": {k: v.to_dict() for k, v in sorted(self.laws.items())}, "peak_flops": self.peak_flops,
               "peak_bytes_per_s": self.peak_bytes_per_s, "threads": self.threads, "dispatch_s": self.dispatch_s,
               "scales": dict(sorted(self.scales.items())), "fitted_on": dict(self.fitted_on)}
        if self.fault_s_per_byte:
            out["fault_s_per_byte"] = self.fault_s_per_byte
        for key in ("dram_bytes_per_s", "weight_bytes_per_s", "packing_s_per_byte", "grouped_flops_per_s"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.weight_law is not None:
            out["weight_law"] = self.weight_law.to_dict()
        if self.out_s_per_byte:
            out["out_s_per_byte"] = dict(sorted(self.out_s_per_byte.items()))
        if self.weight_s_per_byte:
            out["weight_s_per_byte"] = dict(sorted(self.weight_s_per_byte.items()))
        if self.act_s_per_byte:
            out["act_s_per_byte"] = dict(sorted(self.act_s_per_byte.items()))
        if self.act_free_bytes:
            out["act_free_bytes"] = dict(sorted(self.act_free_bytes.items()))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, origin: str = "<dict>") -> CpuPerfParams:
        try:
            laws = {k: PowerLaw(**v) for k, v in d["laws"].items()}
            scales = {k: float(v) for k, v in d.get("scales", {}).items()}
            if any(not (math.isfinite(v) and v > 0) for v in scales.values()):
                raise UserInputError("scales must be finite and positive")
            fault = float(d.get("fault_s_per_byte", 0.0))
            dram, weight = float(d.get("dram_bytes_per_s", 0.0)), float(d.get("weight_bytes_per_s", 0.0))
            packing = float(d.get("packing_s_per_byte", 0.0))
            grouped = float(d.get("grouped_flops_per_s", 0.0))
            for key, v in (("fault_s_per_byte", fault), ("dram_bytes_per_s", dram), ("weight_bytes_per_s", weight),
                           ("packing_s_per_byte", packing), ("grouped_flops_per_s", grouped)):
                if not (math.isfinite(v) and v >= 0):
                    raise UserInputError(f"{key} must be finite and non-negative")
            out_s = {k: float(v) for k, v in d.get("out_s_per_byte", {}).items()}
            weight_s = {k: float(v) for k, v in d.get("weight_s_per_byte", {}).items()}
            act_s = {k: float(v) for k, v in d.get("act_s_per_byte", {}).items()}
            act_free = {k: float(v) for k, v in d.get("act_free_bytes", {}).items()}
            for key, per in (("out_s_per_byte", out_s), ("weight_s_per_byte", weight_s), ("act_s_per_byte", act_s),
                             ("act_free_bytes", act_free)):
                if any(not (math.isfinite(v) and v >= 0) for v in per.values()):
                    raise UserInputError(f"{key} must be finite and non-negative")
            bad = sorted((set(laws) | set(scales) | set(out_s) | set(weight_s) | set(act_s) | set(act_free)) - set(KERNEL_CLASSES)
                         - set(FAMILIES))
            if bad:
                raise UserInputError(f"unknown kernel classes {', '.join(bad)}")
            return cls(laws, float(d["peak_flops"]), float(d["peak_bytes_per_s"]), int(d["threads"]),
                       float(d["dispatch_s"]), dict(d.get("fitted_on", {})), scales, fault, dram, weight,
                       PowerLaw(**d["weight_law"]) if d.get("weight_law") else None, packing, grouped, out_s, weight_s,
                       act_s, act_free)
        except (KeyError, TypeError, ValueError) as e:
            raise UserInputError(f"{origin}: CPU perf parameters: {e}") from None


BYTES_BASIS_CLASSES = frozenset({"conv_depthwise"})
"""Compute classes whose calibrated law runs over bytes moved, not FLOPs. A depthwise convolution does 9 (3x3) to 49
(7x7) MACs per output element and is bound by moving its activations: on the 04:26 UTC quick calibration of session
cpu10 (``fxenergy calibrate --quick``; docs/validation.md, cpu10's section) one FLOP law priced the 3x3 rows at batch 4-64 at 0.32-0.66 of their measured
time while the 7x7 rows of the same tensors came out at 1.05-1.73 (same bytes, 5x the FLOPs); in whole development
models timed in a long-lived process with no page faults (mobilenet_v2 b16/128, mobilenet_v3_large b16/128 and
b8/192, mnasnet1_0 b8/192; ``benchmarks/cpu_process_history.py`` fillers first, forward hooks per module) the
depthwise layers took 1.4-2x their FLOP-law prediction, every other class 0.9-1.1x except in-place elementwise
ops (priced 1.55-1.7x slow, not changed). Calibration files whose law is in FLOPs are priced as
before (the law's unit decides, :attr:`PowerLaw.basis`)."""


def class_basis(cls: str) -> str:
    """The work a kernel class's calibrated law is fitted over (``fxenergy calibrate``): ``"flops"`` for GEMMs and
    convolutions, except :data:`BYTES_BASIS_CLASSES`; ``"bytes"`` for the rest. A fitted law states its own basis
    in its unit (:attr:`PowerLaw.basis`), which is what prices it: older files keep the basis they were fitted on."""
    return "flops" if cls in _COMPUTE and cls not in BYTES_BASIS_CLASSES else "bytes"


class CpuDurationModel:
    """Node durations on a CPU at ``threads`` threads (module docstring); ``params`` calibrated or None."""

    def __init__(self, profile: HardwareProfile, threads: int | None = None, params: CpuPerfParams | None = None):
        if profile.is_gpu:
            raise UserInputError(f"the CPU duration model needs a CPU profile; {profile.name} is a GPU")
        self.profile = profile
        self.threads = int(threads) if threads else (params.threads if params else default_threads(profile))
        self.params = params
        self.spec = cpu_spec(profile, self.threads)
        if params is not None and params.dispatch_s > 0:
            self.spec = _with_dispatch(self.spec, params.dispatch_s)
        self._spec_at_cal = cpu_spec(profile, params.threads) if params is not None else None
        self._floor_spec = self.spec
        self._weight_bps = 0.0
        self._weight_ratio = 1.0
        self.heap_share = 0.0  # set per graph by the duration pass (heap_fault_share); 0 = no heap faults
        if params is not None and self._spec_at_cal is not None:
            # measured rates hold at the calibration's threads; another thread count scales them as the spec does
            ratio = self.spec.levels[-1][2] / self._spec_at_cal.levels[-1][2]
            if params.dram_bytes_per_s:
                levels = (*self.spec.levels[:-1], ("DRAM", math.inf, params.dram_bytes_per_s * ratio))
                self._floor_spec = CpuSpec(self.spec.threads, self.spec.cores, self.spec.peak_flops, levels,
                                           self.spec.dispatch_s, self.spec.notes)
            self._weight_bps = params.weight_bytes_per_s * ratio
            self._weight_ratio = ratio

    @property
    def name(self) -> str:
        return "cpu-calibrated" if self.params is not None else "cpu-spec"

    def notes(self) -> tuple[str, ...]:
        out = list(self.spec.notes)
        src = "calibrated kernel-class curves" if self.params else "spec-sheet efficiencies (uncalibrated)"
        out.append(f"CPU durations: {src}, {self.threads} thread(s) on {self.spec.cores} core(s), "
                   f"{self.spec.dispatch_s * 1e6:.1f} us dispatch per op, cache level by working set")
        return tuple(out)

    # -- the spec-sheet law ------------------------------------------------------------------------
    @staticmethod
    def _spec_time(spec: CpuSpec, cls: str, cost: NodeCost) -> tuple[float, str]:
        ws = cost.bytes_read + cost.bytes_written
        level, bw = spec.level_of(ws)
        t_mem = ws / bw
        t_ew = cost.elementwise_flops / (spec.peak_flops * VECTOR_EFFICIENCY)
        if cls in _COMPUTE and cost.flops > 0:
            law = SPEC_LAWS[cls]
            t_c = float(law.duration_s(cost.flops, spec.peak_flops)) + t_ew
        else:
            t_c = t_ew
        return max(t_c, t_mem) * spec_memory_factor(cls), level

    def bound_time_s(self, cost: NodeCost) -> float:
        """Roofline bound at these threads: all FLOPs at peak, all bytes at the fastest level's bandwidth
        that can hold them (no efficiency factors)."""
        s = self.spec
        ws = cost.bytes_read + cost.bytes_written
        _, bw = s.level_of(ws)
        return max((cost.flops + cost.elementwise_flops) / s.peak_flops, ws / (bw / MEMORY_EFFICIENCY))

    def node_duration(self, trace: NodeTrace, cost: NodeCost, launches: int) -> tuple[float, str, str]:
        """``(seconds, model, kernel class)`` of one node; never below the work at the profile's peak
        (a fitted curve extrapolated past its data must not beat the hardware). A node whose ATen calls
        fall in more than one kernel class (an attention function captured as one node: its linears,
        batched matmuls, softmax and layout copies) is the sum of its calls, each priced as a node of
        its own (:func:`split_calls`): one class's curve over the summed work would price a softmax or
        a copy at GEMM speed."""
        parts = split_calls(trace, cost) if launches > 1 and SPLIT_MIXED_NODES else None
        if parts:
            out = [self._node_duration(t_, c_, 1) for t_, c_ in parts]
            t = sum(o[0] for o in out)
            main = max(out, key=lambda o: o[0])
            model, cls = main[1] + "/split", main[2]
        else:
            t, model, cls = self._node_duration(trace, cost, launches)
        floor = (cost.flops + cost.elementwise_flops) / self.profile.peak_flops_for(torch.float32)
        return max(t, floor), model, cls

    def _node_duration(self, trace: NodeTrace, cost: NodeCost, launches: int) -> tuple[float, str, str]:
        cls = kernel_class(trace, cost)
        spec_t, level = self._spec_time(self.spec, cls, cost)
        dispatch = max(launches, 1) * self.spec.dispatch_s
        if self.params is None or self._spec_at_cal is None:
            return spec_t + dispatch, f"cpu-spec/{level}", cls
        scale = next((self.params.scales[c] for c in _chain(cls) if c in self.params.scales), None)
        if scale is not None:
            assert self._spec_at_cal is not None  # set whenever params are
            at_cal, _ = self._spec_time(self._spec_at_cal, cls, cost)  # the scale was fitted at the data's threads
            t = at_cal * scale * (spec_t / at_cal if at_cal > 0 else 1.0)
            return t + dispatch, f"cpu-fitted/{level}", cls
        ws = cost.bytes_read + cost.bytes_written
        ws_level, ws_bw = self._floor_spec.level_of(ws)
        floor = ws / ws_bw
        if cls == "inplace" and cls in self.params.laws and ws_level != self._floor_spec.levels[-1][0]:
            # measured on hot inputs at 150-225 GB/s, 4x the spec's 16 B/cycle per core for the L3: like the
            # physical bounds (fxenergy.predictors.bounds), a working set a cache holds streams free of the
            # floor; one only DRAM holds keeps the DRAM floor
            floor = 0.0
        if cls in _COMPUTE and cost.param_bytes_read > 0:  # a GEMV-like node streams its (cold) weights
            floor = max(floor, self._weight_s(cost.param_bytes_read))
        fault = 0.0
        if self.params.fault_s_per_byte:  # first touch of fresh mmapped outputs (0 in older calibrations)
            fault = fresh_output_bytes(trace) * self.params.fault_s_per_byte
            if cls in CONV_CLASSES:  # and oneDNN's blocked copies of a convolution's input, output and weights
                copies, weights = _trace_conv_faults(trace, self.threads, MMAP_THRESHOLD_BYTES)
                fault += (copies + (weights if WEIGHT_REORDER_FAULTS else 0)) * self.params.fault_s_per_byte
            if self.heap_share:  # heap outputs returned to the system between passes fault in again
                fault += self.heap_share * heap_bytes(trace) * self.params.fault_s_per_byte
        law = next((self.params.laws[c] for c in (*_chain(cls), _family_fallback(cls)) if c in self.params.laws), None)
        if law is None:
            return spec_t + dispatch + fault, f"cpu-spec-fallback/{level}", cls
        basis = law.basis if cls in self.params.laws else FAMILIES[_family_fallback(cls)].basis
        work = work_for(basis, flops=cost.flops, elementwise_flops=cost.elementwise_flops,
                        bytes_moved=cost.bytes_read + cost.bytes_written)
        if work <= 0:
            return spec_t + dispatch + fault, f"cpu-spec/{level}", cls
        peak = self.params.peak_flops if basis == "flops" else self.params.peak_bytes_per_s
        t = float(law.duration_s(work, peak))
        if cls == "conv_grouped" and self.params.grouped_flops_per_s and cls in self.params.laws:
            t = self._grouped_s(law, cost)  # activation bytes and FMA work, not one FLOP curve
        if cls in self.params.laws:  # its own law: the class's per-byte terms on top (output, weight, activation bytes)
            t += self.params.per_byte_s(cls, weight_bytes=cost.param_bytes_read, out_bytes=cost.bytes_written,
                                        act_bytes=max(cost.bytes_read + cost.bytes_written - cost.param_bytes_read, 0))
        if cls == "matmul" and self.params.packing_s_per_byte and cost.param_bytes_read:
            # rows = FLOPs / (2 x weights): a GEMM (rows > 1) repacks its weights, a GEMV streams them (floor)
            rows = cost.flops / (2 * cost.param_bytes_read / 4)
            if rows >= 1.5:
                t += cost.param_bytes_read * self.params.packing_s_per_byte
        if self.threads != self.params.threads:
            assert self._spec_at_cal is not None  # set whenever params are
            at_cal, _ = self._spec_time(self._spec_at_cal, cls, cost)
            t *= spec_t / at_cal if at_cal > 0 else 1.0
        return max(t, floor) + max(launches - 1, 0) * self.spec.dispatch_s + fault, f"cpu-calibrated/{level}", cls

    def _grouped_s(self, law: PowerLaw, cost: NodeCost) -> float:
        """Calibrated duration of a grouped convolution at the calibration's threads (:data:`GROUPED_OVERLAP_P`)."""
        p = self.params
        assert p is not None
        mem = float(law.duration_s(cost.bytes_read + cost.bytes_written, p.peak_bytes_per_s))
        return float(grouped_time_s(mem, cost.flops / p.grouped_flops_per_s))

    def _weight_s(self, param_bytes: int) -> float:
        """Seconds to stream ``param_bytes`` of cold weights (calibrated; 0 where not measured)."""
        p = self.params
        if p is None:
            return 0.0
        if p.weight_law is not None:
            return float(p.weight_law.duration_s(param_bytes, p.peak_bytes_per_s)) / self._weight_ratio
        return param_bytes / self._weight_bps if self._weight_bps > 0 else 0.0


def split_calls(trace: NodeTrace, cost: NodeCost) -> list[tuple[NodeTrace, NodeCost]] | None:
    """The node's non-free ATen calls as one-call ``(trace, cost)`` pairs (costs by the default convention of
    :mod:`fxenergy.passes.costs`), or None when they all fall in one kernel class (the node is priced whole).

    >>> split_calls(NodeTrace("", "", "forward", (), ()), NodeCost(0, 0, 0, 0, 0, 0, "add")) is None
    True
    """
    from fxenergy.passes.costs import op_arith, op_bytes
    from fxenergy.passes.formulas import get_convention
    from fxenergy.passes.ops import lookup

    conv = get_convention("default")
    parts = []
    for call in trace.calls:
        if lookup(call.op) == (True, None):
            continue  # a view: free
        arith = op_arith(call, conv)
        r, w, p = op_bytes(call)
        macs, ew = (arith.macs, arith.elementwise_flops) if arith is not None else (0, 0)
        one = NodeCost(macs, 2 * macs, ew, r, w, p, call.name, () if arith is not None else (call.name,))
        if one.free:
            continue
        t1 = NodeTrace(trace.module_path, trace.module_type, trace.phase, (call,), ())
        parts.append((t1, one))
    classes = {kernel_class(t1, c1) for t1, c1 in parts}
    if len(parts) < 2 or len(classes) < 2:
        return None
    if "matmul" not in classes and any(c.name == "_safe_softmax" for c in trace.calls):
        # F.scaled_dot_product_attention alone (transformers' "sdpa" attention): captured as its math
        # decomposition, but on a CPU it runs as ONE fused (flash) kernel that never writes the scores, the
        # kernel the calibration's "sdpa" benchmark times in the bmm class: priced whole
        return None
    return parts


def _chain(cls: str) -> tuple[str, ...]:
    """``cls`` and the classes standing in for it, nearest first (tanh, activation, elementwise)."""
    out = [cls]
    while out[-1] in _CLASS_FALLBACK:
        out.append(_CLASS_FALLBACK[out[-1]])
    return tuple(out)


def _family_fallback(cls: str) -> str:
    if cls in CONV_CLASSES:
        return "convolution"
    while cls not in FAMILIES and cls in _CLASS_FALLBACK:
        cls = _CLASS_FALLBACK[cls]
    return cls


def _with_dispatch(spec: CpuSpec, dispatch_s: float) -> CpuSpec:
    return CpuSpec(spec.threads, spec.cores, spec.peak_flops, spec.levels, dispatch_s, spec.notes)


class CpuPowerModel:
    """Package power of a CPU running ``threads`` threads (module docstring).

    ``idle_w`` / ``core_w`` override the profile's figures (a fitted parameter set or a RAPL
    calibration gives them); otherwise idle is the profile's (or 25% of TDP, assumed) and a busy
    core draws ``(TDP - idle) / cores``.
    """

    scope = "package"

    def __init__(self, profile: HardwareProfile, threads: int, *, idle_w: float | None = None, core_w: float | None = None,
                 busy_share: float = BUSY_SHARE, source: str | None = None):
        self.profile = profile
        notes = []
        tdp = profile.tdp_w
        if tdp is None:
            tdp = W_PER_CORE_GUESS * profile.compute_units
            notes.append(f"{profile.name}: TDP unknown; {W_PER_CORE_GUESS:g} W per core assumed ({tdp:.0f} W)")
        elif profile.is_estimated("tdp_w"):
            notes.append(f"{profile.name}: TDP {tdp:.0f} W is an estimate ({profile.source_of('tdp_w')})")
        self.tdp_w = float(tdp)
        if idle_w is None:
            if profile.idle_w is None:
                idle_w = IDLE_FRACTION_ASSUMED * self.tdp_w
                notes.append(f"{profile.name}: idle power not in the profile; {IDLE_FRACTION_ASSUMED:.0%} of TDP "
                             f"({idle_w:.0f} W) assumed")
            else:
                idle_w = float(profile.idle_w)
        self.idle_w = float(idle_w)
        self.core_w = float(core_w) if core_w is not None else max(self.tdp_w - self.idle_w, 0.0) / profile.compute_units
        self.cores = max(1, min(int(threads), int(profile.compute_units)))
        self.busy_share = busy_share
        self.source = source or "spec sheet (TDP, idle) and the power law of fxenergy.perf.cpu"
        self._notes = tuple(notes)

    @property
    def limit_w(self) -> float:
        """The package's power limit (TDP), or the model's full-load power where that is higher
        (a fitted idle + core figure measured above TDP would otherwise be flagged as absurd)."""
        return max(self.tdp_w, self.power_w(1.0))

    def power_w(self, utilisation: float) -> float:
        u = min(max(utilisation, 0.0), 1.0)
        return self.idle_w + self.core_w * self.cores * (self.busy_share + (1 - self.busy_share) * u)

    def notes(self) -> tuple[str, ...]:
        return self._notes + (f"CPU energy: {self.scope} power (not DRAM, not wall) of {self.cores} active core(s): "
                              f"idle {self.idle_w:.1f} W + {self.core_w:.2f} W per busy core; {self.source}",)


def local_thread_info() -> dict[str, Any]:
    """Threads this process runs with: torch's intra-op count, the cgroup quota and the affinity."""
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    return {"torch_threads": torch.get_num_threads(), "cgroup_cpu_quota": cgroup_cpu_quota(), "affinity_cpus": affinity}
