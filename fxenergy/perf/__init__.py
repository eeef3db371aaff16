"""Performance and power laws per op family and device kind, with fitted coefficients as JSON.

GPU (the ``learned`` backend's engine):

* :mod:`fxenergy.perf.device` — the device figures (from a hardware profile), math modes, clocks, power limit;
* :mod:`fxenergy.perf.kernels` — the kernels an ATen call launches, by op family;
* :mod:`fxenergy.perf.features` — dimensionless features and roofline bounds;
* :mod:`fxenergy.perf.trees` — boosted trees as JSON, evaluated with numpy;
* :mod:`fxenergy.perf.model` — node durations and node power at run time;
* :mod:`fxenergy.perf.datasets`, :mod:`fxenergy.perf.fitting`, :mod:`fxenergy.perf.nicolai` — fitting and
  validation on the shared data (``scripts/fit_gpu_perf.py``).

CPU (the ``physical`` backend's engine): :mod:`fxenergy.perf.cpu` — kernel-class durations with a
dispatch floor and cache-level bandwidths, and the package power model at a thread count.
"""
