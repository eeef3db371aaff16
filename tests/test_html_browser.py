"""The HTML report in a real browser: headless Chromium renders it; the summary, the chart and the
table are in the rendered DOM, and the totals row matches the JSON report.

Skipped, with the reason, when no Chromium is installed (CI does not install one: `apt-get install
-y chromium` on Debian enables this test).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import torch
from torch import nn

import fxenergy
from fxenergy.report import render

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (apt-get install -y chromium)")


class _DOM(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.totals: dict[str, float] = {}
        self.summary_terms: list[str] = []
        self._in_summary = False
        self._in_dt = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        a = dict(attrs)
        if a.get("data-column") and a.get("data-value") is not None:
            self.totals[a["data-column"]] = float(a["data-value"])
        if tag == "section" and a.get("id") == "summary":
            self._in_summary = True
        self._in_dt = tag == "dt" and self._in_summary

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._in_summary = False
        if tag == "dt":
            self._in_dt = False

    def handle_data(self, data: str) -> None:
        if self._in_dt:
            self.summary_terms.append(data)


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
                          capture_output=True, text=True, timeout=120)


def test_html_report_renders_in_chromium(tmp_path):
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    result = fxenergy.annotate(model, torch.randn(8, 64), hardware="a30", predictor="roofline")
    page = tmp_path / "report.html"
    page.write_text(render(result, "html", by="layer"))
    doc = json.loads(render(result, "json", by="layer"))

    dom_text = _chromium("--dump-dom", page.as_uri()).stdout
    dom = _DOM()
    dom.feed(dom_text)
    assert dom.tags.get("svg") == 1 and dom.tags.get("rect", 0) >= 2, "the bar chart did not render"
    assert dom.tags.get("table") == 1 and dom.tags.get("tr", 0) >= 3, "the table did not render"
    assert {"per run", "per 1,000 runs", "setup"} <= set(dom.summary_terms)
    assert dom.totals["energy_j"] == pytest.approx(doc["totals"]["energy_j"], rel=1e-12)
    assert dom.totals["duration_s"] == pytest.approx(doc["totals"]["duration_s"], rel=1e-12)
    assert dom.totals["macs"] == doc["totals"]["macs"]

    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1000,800", page.as_uri())
    from PIL import Image

    with Image.open(shot) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 10, "the page rendered blank"
