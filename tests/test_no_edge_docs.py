"""The user guide's figures for the edge decision's ROC and the thick-sample warning are
those of the committed reports (training/reports/acquisition/roc.json,
benchmarks/thickness_indicator.json)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _guide() -> str:
    return re.sub(r"\s+", " ", (ROOT / "docs" / "user_guide.rst").read_text(encoding="utf-8"))


def test_roc_figures_in_the_guide():
    roc = json.loads((ROOT / "training/reports/acquisition/roc.json").read_text())
    k = roc["thresholds"].index(roc["default_min_snr"])
    text = _guide()
    for det, prefix in (("correlated", "l3bg_"), ("white", "white_l3bg_")):
        rates = [roc["detection"][f"{prefix}{r}"]["rate"][k] for r in (3, 6, 12, 25)]
        assert " / ".join(f"{100 * x:.1f}" for x in rates) in text, det
    la = roc["false_mn"]["la_m_like"]
    la_max = max(la["correlated"][k], la["white"][k])
    assert f"and {100 * la_max:.0f} % on La M5,4-like lines" in text
    for fam in ("background", "broad_edge", "other_l_edge"):
        assert max(roc["false_mn"][fam]["correlated"][k], roc["false_mn"][fam]["white"][k]) == 0
    spikes = max(roc["false_mn"]["spikes"]["correlated"][k], roc["false_mn"]["spikes"]["white"][k])
    assert f"{100 * spikes:.2f} % on spikes" in text


def test_thickness_figures_in_the_guide():
    res = json.loads((ROOT / "benchmarks/thickness_indicator.json").read_text())
    s = res["summary_by_map_pixels"]
    thin = sum(1 for c in res["cells"] if c["t_over_lambda"] <= 0.5) * res["maps_per_cell"]
    text = _guide()
    assert (
        s["128"]["false_warning_rate_t_le_0.5"] == 0.0
        and s["64"]["worst_cell_false_warning_rate"] == 0.0
    )
    assert f"none of the {thin} maps at t/lambda <= 0.5" in text
    assert s["128"]["detection_rate_t_ge_1.0_of_decided"] == 1.0
    assert f"{100 * s['128']['decided_share_t_ge_1.0']:.0f} % of the maps of 128 pixels" in text
    assert f"{100 * s['64']['decided_share_t_ge_1.0']:.0f} % of those of 64 pixels" in text
    assert f"above {res['threshold']:g} warns" in text
