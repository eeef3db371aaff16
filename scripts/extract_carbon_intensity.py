"""Derive fxenergy's carbon-intensity table from the data files codecarbon ships, and write it as JSON.

    uv sync --extra carbon && uv run python scripts/extract_carbon_intensity.py [--no-write]

Reads, from the installed ``codecarbon`` package (not from the network):

* ``data/private_infra/global_energy_mix.json``: per country (ISO 3166 alpha-3) the grid carbon
  intensity in gCO2e/kWh and the year of the figure (codecarbon builds it from Our World in Data's
  energy dataset, itself from Ember and the Energy Institute);
* ``data/cloud/impact.csv``: per cloud provider and region the intensity (gCO2e/kWh) and the source
  each row names.

The world default is the generation-weighted mean of the country figures (weights ``total_TWh``),
computed here, not typed in. fxenergy reads the result through :mod:`fxenergy.training.carbon`, so
codecarbon (and its dependencies) is only needed to refresh the table.
"""

from __future__ import annotations

import argparse
import csv
import json
from importlib import metadata, resources
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "fxenergy" / "training" / "data" / "carbon-intensity.json"


def extract() -> dict:
    root = resources.files("codecarbon") / "data"
    mix = json.loads((root / "private_infra" / "global_energy_mix.json").read_text(encoding="utf-8"))
    countries = {}
    for iso, row in sorted(mix.items()):
        ci = row.get("carbon_intensity")
        if ci is None or not (ci > 0):
            continue
        countries[iso.upper()] = {"name": row["country_name"], "g_per_kwh": round(float(ci), 3),
                                  "year": int(row["year"]), "total_twh": float(row.get("total_TWh") or 0.0)}
    weighted = [(c["g_per_kwh"], c["total_twh"]) for c in countries.values() if c["total_twh"] > 0]
    world = sum(g * w for g, w in weighted) / sum(w for _, w in weighted)
    cloud = {}
    with (root / "cloud" / "impact.csv").open(encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            key = f"{row['provider']}:{row['region']}"
            cloud[key] = {"name": f"{row['providerName']} {row['region']} ({row['city'] or row['country_name']})",
                          "g_per_kwh": float(row["impact"]), "country": row["countryIsoCode"],
                          "source": row["source"]}
    version = metadata.version("codecarbon")
    return {
        "schema": "fxenergy.carbon-intensity/1",
        "source": f"codecarbon {version} package data: data/private_infra/global_energy_mix.json (per-country grid "
                  "intensity from Our World in Data's energy dataset, year per entry) and data/cloud/impact.csv "
                  "(per cloud region, source per row)",
        "script": "scripts/extract_carbon_intensity.py",
        "world": {"name": "World (generation-weighted mean of the country figures)", "g_per_kwh": round(world, 3),
                  "year": max(c["year"] for c in countries.values())},
        "countries": {k: {kk: v for kk, v in c.items() if kk != "total_twh"} for k, c in countries.items()},
        "cloud_regions": cloud,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    data = extract()
    print(f"{len(data['countries'])} countries, {len(data['cloud_regions'])} cloud regions, "
          f"world {data['world']['g_per_kwh']} g/kWh")
    if not args.no_write:
        OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
