"""Time and peak RSS of `fxenergy report MODEL` in a fresh process (default llama-2-70b, seq 128).

    uv run python benchmarks/big_model_memory.py [MODEL ...] [--seq-len 128]

Peak RSS is the child's ru_maxrss (includes the Python interpreter, torch and transformers).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["llama-2-70b"])
    ap.add_argument("--seq-len", type=int, default=128)
    a = ap.parse_args()
    print(f"{'model':<16} {'wall s':>8} {'peak RSS GB':>12}  total MACs")
    for model in a.models:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            t = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            subprocess.run([sys.executable, "-m", "fxenergy", "report", model, "--seq-len", str(a.seq_len),
                            "--format", "json", "-o", out], check=True,
                           env={**os.environ, "FXENERGY_CACHE_DIR": d})  # an empty analysis cache: a first run
            wall = time.perf_counter() - t
            rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            import json

            macs = json.load(open(out))["totals"]["macs"]
        note = "" if rss_kb > before else " (max RSS of an earlier child; run one model per call for exact figures)"
        print(f"{model:<16} {wall:>8.1f} {rss_kb / 1e6:>12.2f}  {macs:,}{note}")


if __name__ == "__main__":
    main()
