"""Rental housing (出租房屋): which buildings are let, to how many tenants, and how they inspect.

Rental villages (出租大村) next to industrial parks let most houses, each
split into many rooms; the chief one houses about 7,500 new residents
(新居民) among about 9,000 people.  Each let house is registered with the three
things grid workers look at first (escape window, e-bike charging, wiring); they
make its checklist items fail more often in the year of inspections that gives
it its risk level (demo.jiashan.inspections).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from demo.jiashan.names import PersonFactory

CHIEF_NEW_RESIDENTS = (7300, 7700)

# Per kind of building: share let out, rooms let (low, high inclusive), tenants per room.
_LETTING: dict[str, tuple[float, int, int, float]] = {
    "apartment": (0.25, 1, 6, 2.0),
    "street_house": (0.30, 1, 4, 1.5),
    "rural_house": (0.12, 2, 6, 1.3),
    "rental_village_house": (0.5, 3, 10, 1.3),
    "chief_rental_village_house": (0.75, 6, 24, 1.4),
}
ESCAPE_WINDOW = (("ok", 0.82), ("missing", 0.11), ("blocked", 0.07))
EBIKE_CHARGING = (("ok", 0.80), ("fly_line", 0.13), ("indoor", 0.07))
WIRING = (("ok", 0.83), ("private", 0.11), ("aged", 0.06))


def _pick(
    table: tuple[tuple[str, float], ...], count: int, rng: np.random.Generator, worse: npt.NDArray[np.float64]
) -> npt.NDArray[np.object_]:
    """Draw outcomes; ``worse`` (per row, >= 1) multiplies the odds of every problem."""
    labels = np.array([label for label, _ in table], dtype=object)
    base = np.array([p for _, p in table])
    odds = np.tile(base, (count, 1))
    odds[:, 1:] *= np.asarray(worse, dtype=np.float64).reshape(-1, 1)
    odds /= odds.sum(axis=1, keepdims=True)
    u = rng.random(count)[:, None]
    choice = (u > np.cumsum(odds, axis=1)).sum(axis=1)
    return labels[np.minimum(choice, len(labels) - 1)]


def add_rental_fields(
    buildings: pd.DataFrame,
    villages: pd.DataFrame,
    rng: np.random.Generator,
    reference: pd.Timestamp,
    people: PersonFactory,
) -> pd.DataFrame:
    """Add rental, rooms, tenants, residents, landlord and inspection columns."""
    out = buildings.copy()
    n = len(out)
    village_attrs = villages["attrs"].tolist()
    village_row = out["_gen_village_row"].to_numpy()
    in_rental_village = np.array([village_attrs[v]["rental_village"] for v in village_row])
    chief_row = next(i for i, a in enumerate(village_attrs) if a["chief_rental_village"])
    rural = (out["kind"] == "rural_house").to_numpy()
    letting_kind = np.where(in_rental_village & rural, "rental_village_house", out["kind"])
    letting_kind = np.where(rural & (village_row == chief_row), "chief_rental_village_house", letting_kind)

    rental = np.zeros(n, dtype=bool)
    rooms = np.zeros(n, dtype=np.int64)
    tenants = np.zeros(n, dtype=np.int64)
    for kind, (share, low, high, per_room) in _LETTING.items():
        rows = np.flatnonzero(letting_kind == kind)
        let = rows[rng.random(len(rows)) < share]
        rental[let] = True
        if kind == "apartment":
            cap = np.minimum(out["households"].to_numpy()[let], high)
            rooms[let] = rng.integers(low, np.maximum(cap, low) + 1)
        else:
            rooms[let] = rng.integers(low, high + 1, len(let))
        tenants[let] = np.maximum(rng.poisson(per_room * rooms[let]), 1)
    chief = np.flatnonzero(rental & (village_row == chief_row))
    if len(chief):
        target = int(rng.integers(*CHIEF_NEW_RESIDENTS))
        tenants[chief] = 1 + rng.multinomial(target - len(chief), rooms[chief] / rooms[chief].sum())

    households = out["households"].to_numpy()
    per_household = np.where(in_rental_village, rng.normal(2.4, 0.3, n), rng.normal(2.8, 0.4, n))
    locals_ = np.maximum(np.rint(households * np.clip(per_household, 1.0, 5.0)).astype(np.int64), households)
    out["rental"] = rental
    out["rooms"] = rooms
    out["tenants"] = tenants
    out["new_residents"] = tenants
    out["residents"] = locals_ + tenants

    let = np.flatnonzero(rental)
    landlords = people.draw(len(let))
    for col in ("name", "phone", "id_card"):
        values = np.full(n, None, dtype=object)
        values[let] = landlords[col].to_numpy()
        out[f"landlord_{col}"] = values
    # Crowded rental-village houses fail inspections more often.
    worse = np.where(in_rental_village[let], 1.8, 1.0)
    findings = {
        "escape_window": _pick(ESCAPE_WINDOW, len(let), rng, worse),
        "ebike_charging": _pick(EBIKE_CHARGING, len(let), rng, worse),
        "wiring": _pick(WIRING, len(let), rng, worse),
    }
    for col, values in findings.items():
        full = np.full(n, None, dtype=object)
        full[let] = values
        out[col] = full
    return out
