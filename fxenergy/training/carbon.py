"""Carbon: gCO2e = kWh × carbon intensity (g/kWh) × PUE.

The intensity comes from ``data/carbon-intensity.json``, derived from the data files that the
``codecarbon`` package ships (per-country grid intensity with its year; per cloud region with its
source) by ``scripts/extract_carbon_intensity.py``: no hand-typed table. A region is an ISO 3166
alpha-3 country code (``ESP``), a country name (``Spain``) or a cloud region ``provider:region``
(``gcp:europe-west1``); without one the generation-weighted world mean is used.

PUE (power usage effectiveness, facility energy / IT energy) defaults to 1.58, the industry-average
PUE reported by the Uptime Institute Global Data Center Survey 2023; pass 1.0 for a desktop machine.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from fxenergy._files import read_package_json
from fxenergy.errors import UserInputError

__all__ = ["DEFAULT_PUE", "PUE_SOURCE", "CarbonIntensity", "carbon_intensity", "list_regions", "grams_co2e"]

DEFAULT_PUE = 1.58
PUE_SOURCE = "Uptime Institute Global Data Center Survey 2023, industry-average PUE"


@dataclass(frozen=True, slots=True)
class CarbonIntensity:
    """Grid intensity of one region: grams CO2e per kWh, with where the figure comes from."""

    region: str
    name: str
    g_per_kwh: float
    source: str
    year: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "name": self.name, "g_per_kwh": self.g_per_kwh, "year": self.year,
                "source": self.source}


@cache
def _table() -> dict[str, Any]:
    return read_package_json("fxenergy.training", "data", "carbon-intensity.json")


def list_regions() -> list[str]:
    """Every accepted region key: ISO country codes and ``provider:region`` cloud regions."""
    t = _table()
    return sorted(t["countries"]) + sorted(t["cloud_regions"])


def carbon_intensity(region: str | None = None, *, g_per_kwh: float | None = None) -> CarbonIntensity:
    """The intensity for ``region`` (None: world mean), or the figure given as ``g_per_kwh``."""
    t = _table()
    if g_per_kwh is not None:
        if not (isinstance(g_per_kwh, (int, float)) and math.isfinite(g_per_kwh) and g_per_kwh >= 0):
            raise UserInputError(f"carbon intensity must be a finite number of g/kWh >= 0, got {g_per_kwh!r}")
        return CarbonIntensity(region or "custom", region or "given by the user", float(g_per_kwh), "given by the user")
    if region is None:
        w = t["world"]
        return CarbonIntensity("world", w["name"], w["g_per_kwh"], t["source"], w["year"])
    key = region.strip()
    countries, clouds = t["countries"], t["cloud_regions"]
    if key.upper() in countries:
        c = countries[key.upper()]
        return CarbonIntensity(key.upper(), c["name"], c["g_per_kwh"], t["source"], c["year"])
    by_name = {c["name"].lower(): iso for iso, c in countries.items()}
    if key.lower() in by_name:
        iso = by_name[key.lower()]
        c = countries[iso]
        return CarbonIntensity(iso, c["name"], c["g_per_kwh"], t["source"], c["year"])
    if key.lower() in clouds:
        c = clouds[key.lower()]
        return CarbonIntensity(key.lower(), c["name"], c["g_per_kwh"], f"{c['source']} (via codecarbon data)")
    near = difflib.get_close_matches(key, [*countries, *clouds, *(c["name"] for c in countries.values())], n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise UserInputError(f"unknown region {region!r}: give an ISO country code (ESP), a country name or a cloud "
                         f"region provider:region (gcp:europe-west1){hint}")


def grams_co2e(energy_kwh: float, intensity: CarbonIntensity, pue: float = DEFAULT_PUE) -> float:
    """gCO2e = kWh × intensity × PUE."""
    check_pue(pue)
    return energy_kwh * intensity.g_per_kwh * pue


def check_pue(pue: float) -> float:
    if not (isinstance(pue, (int, float)) and math.isfinite(pue) and pue >= 1.0):
        raise UserInputError(f"PUE must be a number >= 1 (facility energy / IT energy), got {pue!r}")
    return float(pue)
