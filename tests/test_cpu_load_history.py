"""benchmarks/cpu_load_history.py's analysis (issue 12, session 14): per label and minute, each model's time against
its median in the first label."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import cpu_load_history as lh  # noqa: E402


def test_times_are_read_against_the_first_label_per_minute(tmp_path, capsys):
    rows = []
    for label, t0, factor in (("rested", 0.0, 1.0), ("loaded", 100.0, 1.0), ("loaded", 190.0, 1.2)):
        for model, seconds in (("a", 0.1), ("b", 0.4)):
            rows.append({"label": label, "t_unix": t0, "model": model, "batch": 1, "size": 224,
                         "seconds": seconds * factor, "canary_gflops": 150.0, "canary_copy_gbs": 30.0})
    f = tmp_path / "load.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lh.analyse(f, None)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| ")][1:]  # past the header
    cells = [[c.strip() for c in x.strip("|").split("|")] for x in lines]
    assert [(c[0].split()[0], c[1], c[3]) for c in cells] == [
        ("rested", "0", "1.000"), ("loaded", "0", "1.000"), ("loaded", "1", "1.200")]
