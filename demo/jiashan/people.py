"""Synthetic grid staff (网格力量): leaders, full-time workers, auxiliary and community police.

Figures follow Jiashan's published set-up: a leader (网格长) and a full-time
worker (专职网格员) in every grid, 776 full-time workers in all, an auxiliary
police officer (网格辅警) in 628 grids, and 42 key villages whose chief grid
leader (总网格长) is a community police officer (社区民警), posted to the village.
The rest of the roster (micro-grid leaders, liaison cadres, beat officers,
organisation units) is demo.jiashan.roster's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demo.jiashan.names import PersonFactory

FULL_TIME_WORKERS = 776
AUX_POLICE_GRIDS = 628
COMMUNITY_POLICE_VILLAGES = 42
ROLES = ("grid_leader", "grid_worker", "aux_police", "community_police")


class StaffingError(ValueError):
    """The grid layer is too small for the published staffing figures."""


def build_staff(
    grids: pd.DataFrame, villages: pd.DataFrame, rng: np.random.Generator, people: PersonFactory
) -> pd.DataFrame:
    """One row per posting: name, phone, id_card, role, layer, area_code.

    A community police officer holds two postings to the key village: community
    police and chief grid leader, so every grid of the village shows them.
    """
    codes = grids["code"].to_numpy()
    n = len(codes)
    if not AUX_POLICE_GRIDS <= n <= FULL_TIME_WORKERS or len(villages) < COMMUNITY_POLICE_VILLAGES:
        raise StaffingError(
            f"need {AUX_POLICE_GRIDS}..{FULL_TIME_WORKERS} grids and >= {COMMUNITY_POLICE_VILLAGES} villages, "
            f"got {n} grids and {len(villages)} villages"
        )
    households = grids["households"].to_numpy()
    # The busiest grids get the second full-time worker.
    second = np.argsort(-households, kind="stable")[: FULL_TIME_WORKERS - n]
    village_kind = dict(zip(villages["code"], villages["attrs"].map(lambda a: a["kind"]), strict=True))
    urban = np.array([village_kind[p] == "community" for p in grids["parent_code"]])
    aux_weight = np.where(urban, 2.0, 1.0)
    aux = np.sort(rng.choice(n, AUX_POLICE_GRIDS, replace=False, p=aux_weight / aux_weight.sum()))
    first_grid = grids.groupby("parent_code", sort=False)["code"].first()
    village_urban = np.array([village_kind[v] == "community" for v in first_grid.index])
    police_weight = np.where(village_urban, 3.0, 1.0)
    police = np.sort(
        rng.choice(len(first_grid), COMMUNITY_POLICE_VILLAGES, replace=False, p=police_weight / police_weight.sum())
    )
    grid_code = np.concatenate([codes, codes, codes[np.sort(second)], codes[aux], first_grid.to_numpy()[police]])
    role = np.repeat(
        np.array(ROLES, dtype=object),
        [n, n + len(second), len(aux), len(police)],
    )
    order = np.argsort(grid_code, kind="stable")
    staff = people.draw(len(grid_code))
    staff["role"] = role[order]
    staff["layer"] = "grid"
    staff["area_code"] = grid_code[order]
    police_rows = staff["role"] == "community_police"
    # Village codes are the first 12 digits of their grids' codes.
    village = grids.set_index("code")["parent_code"]
    staff.loc[police_rows, "area_code"] = village.loc[staff.loc[police_rows, "area_code"]].to_numpy()
    staff.loc[police_rows, "layer"] = "village"
    chiefs = staff.loc[police_rows].assign(role="chief_grid_leader")
    return pd.concat([staff, chiefs]).sort_index(kind="stable").reset_index(drop=True)
