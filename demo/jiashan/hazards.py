"""Synthetic hazards (隐患) found by grid workers, mostly in rented houses.

A hazard sits at a building and follows the rectification cycle:
open -> rectifying -> rectified, or overdue once its deadline passes.
Buildings whose inspection found a problem are likelier to hold the matching
hazard (a fly line at inspection -> an ``ebike_fly_line`` hazard).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

HAZARD_CATEGORIES: dict[str, str] = {
    "private_wiring": "私拉乱接",
    "ebike_fly_line": "飞线充电",
    "blocked_escape": "消防通道堵塞",
    "illegal_ebike_parking": "电动车违停",
    "gas": "燃气隐患",
}
HAZARD_SEVERITIES = ("low", "medium", "high")
HAZARD_STATUSES = ("open", "rectifying", "rectified", "overdue")
DEFAULT_HAZARDS = 5000
RENTAL_SHARE = 0.85
_DAYS_TO_RECTIFY = {"high": 3, "medium": 7, "low": 15}
_BASE_ODDS = np.array([0.22, 0.24, 0.18, 0.22, 0.14])
_OTHER_ODDS = np.array([0.15, 0.10, 0.15, 0.40, 0.20])


def _choose_rows(p: npt.NDArray[np.float64], u: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Row-wise categorical draw from probability rows ``p`` with uniforms ``u``."""
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((u[:, None] > cum).sum(axis=1), p.shape[1] - 1)


def build_hazards(
    buildings: pd.DataFrame, rng: np.random.Generator, reference: pd.Timestamp, count: int = DEFAULT_HAZARDS
) -> pd.DataFrame:
    """``count`` hazards at buildings; columns described in the module docstring and below.

    Columns: hazard_no, category, category_label, severity, status, found_at,
    rectify_by, rectified_at, building, x, y (EPSG:4549; the caller adds lon/lat).
    """
    if count < 0:
        raise ValueError(f"hazard count must be >= 0, got {count}")
    rental = buildings["rental"].to_numpy()
    risk_weight = buildings["risk_level"].map({"low": 1.0, "medium": 3.0, "high": 6.0}).fillna(0.0).to_numpy()
    let_rows = np.flatnonzero(rental)
    other_rows = np.flatnonzero(~rental)
    at_rental = int(round(count * RENTAL_SHARE)) if len(let_rows) else 0
    picked_let = rng.choice(let_rows, at_rental, p=risk_weight[let_rows] / risk_weight[let_rows].sum())
    picked_other = rng.choice(other_rows, count - at_rental)
    rows = np.concatenate([picked_let, picked_other])

    odds = np.tile(_BASE_ODDS, (count, 1))
    odds[at_rental:] = _OTHER_ODDS
    wiring = buildings["wiring"].to_numpy()[rows]
    charging = buildings["ebike_charging"].to_numpy()[rows]
    escape = buildings["escape_window"].to_numpy()[rows]
    odds[:, 0] *= np.where(np.isin(wiring, ["private", "aged"]), 4.0, 1.0)
    odds[:, 1] *= np.where(np.isin(charging, ["fly_line", "indoor"]), 4.0, 1.0)
    odds[:, 2] *= np.where(escape == "blocked", 4.0, 1.0)
    codes = np.array(list(HAZARD_CATEGORIES), dtype=object)
    category = codes[_choose_rows(odds, rng.random(count))]

    severity_odds = np.tile([0.45, 0.40, 0.15], (count, 1))
    risky = np.isin(category, ["private_wiring", "ebike_fly_line", "gas"])
    severity_odds[risky] = [0.30, 0.45, 0.25]
    severity = np.array(HAZARD_SEVERITIES, dtype=object)[_choose_rows(severity_odds, rng.random(count))]

    found_s = rng.uniform(0, 365 * 86400, count).round()
    found_at = reference - pd.to_timedelta(found_s, unit="s")
    days = np.array([_DAYS_TO_RECTIFY[s] for s in severity], dtype=np.float64)
    rectify_by = found_at + pd.to_timedelta(days, unit="D")
    past_due = np.asarray(rectify_by <= reference)
    u = rng.random(count)
    # Past the deadline: 94 % were rectified, the rest are overdue.  Still
    # within it: spread over the cycle by how much of the time has passed.
    elapsed = np.clip((reference - found_at) / (rectify_by - found_at), 0.0, 1.0)
    status = np.where(
        past_due,
        np.where(u < 0.94, "rectified", "overdue"),
        np.where(u < 0.2 + 0.5 * elapsed, "rectified", np.where(u < 0.55 + 0.3 * elapsed, "rectifying", "open")),
    ).astype(object)
    took = rng.beta(2.0, 2.5, count) * days * (1.0 + 0.4 * (rng.random(count) < 0.1))
    rectified_at = found_at + pd.to_timedelta(took, unit="D")
    rectified_at = rectified_at.where(rectified_at <= reference, reference)
    rectified_at = pd.Series(rectified_at).where(status == "rectified")

    x = buildings["x"].to_numpy()[rows]
    y = buildings["y"].to_numpy()[rows]
    order = np.argsort(np.asarray(found_at), kind="stable")
    table = (
        pd.DataFrame(
            {
                "category": category,
                "category_label": [HAZARD_CATEGORIES[c] for c in category],
                "severity": severity,
                "status": status,
                "found_at": found_at,
                "rectify_by": rectify_by,
                "rectified_at": rectified_at.to_numpy(),
                "building": buildings.index.to_numpy()[rows],
                "x": x,
                "y": y,
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    table.insert(0, "hazard_no", [f"YH{reference.year}{k:06d}" for k in range(1, count + 1)])
    return table
