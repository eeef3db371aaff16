#!/usr/bin/env bash
# A quick calibration forced through a slow phase (issue 12, session cpu15): 40 s in, every thread of the calibrating
# process is pinned to CPU 0 (taskset), so its OpenMP threads share one core for the rest of the run. A stress test of
# the drift correction (fxenergy.calibrate.fitting.normalise_drift), not a model of a slowed host: on this 2-core VM
# the canary fell ~8x, not ~2x. Run from the repository root; takes the machine lock.
#     bash benchmarks/cpu_drift_slowhalf.sh /tmp/cpu15-cal6-slow.json
set -euo pipefail
out=${1:?usage: cpu_drift_slowhalf.sh OUT.json}
venv_python="$(pwd)/.venv/bin/python"
flock /tmp/fxenergy-cpu.lock bash -c '
uv run python -m fxenergy calibrate --quick -o "$1" > "$1.log" 2>&1 &
sleep 3
pid=$(pgrep -f "^$2 -m fxenergy calibrate")
echo "calibrating: pid $pid at $(date -u +%T)"
sleep 40
echo "pinning every thread to CPU 0 at $(date -u +%T)"
taskset -a -p -c 0 "$pid"
wait
echo "done $(date -u +%T)"
grep -i "drift" "$1.log" || true' _ "$out" "$venv_python"
