"""Synthetic grid staff (网格力量): leaders, full-time workers, auxiliary and community police.

Figures follow Jiashan's published set-up: a leader (网格长) and a full-time
worker (专职网格员) in every grid, 776 full-time workers in all, an auxiliary
police officer (网格辅警) in 628 grids, and 42 key villages whose chief grid
leader (总网格长) is a community police officer (社区民警), posted to the village.
The rest of the roster (micro-grid leaders, liaison cadres, beat officers,
organisation units) is demo.jiashan.roster's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demo.jiashan.names import PersonFactory

FULL_TIME_WORKERS = 776
AUX_POLICE_GRIDS = 628
COMMUNITY_POLICE_VILLAGES = 42
ROLES = ("grid_leader", "grid_worker", "aux_police", "community_police")
# Jiashan's grids and villages (demo.jiashan.layers), the base of the ratios for other counties.
JIASHAN_GRIDS, JIASHAN_VILLAGES = 760, 174


class StaffingError(ValueError):
    """The grid layer is too small for the published staffing figures."""


@dataclass(frozen=True)
class StaffFigures:
    """How many full-time workers, grids with an auxiliary police officer and key villages."""

    full_time_workers: int = FULL_TIME_WORKERS
    aux_police_grids: int = AUX_POLICE_GRIDS
    community_police_villages: int = COMMUNITY_POLICE_VILLAGES


JIASHAN_FIGURES = StaffFigures()


def figures_at_jiashans_ratios(grids: int, villages: int) -> StaffFigures:
    """The figures of a county of ``grids`` grids and ``villages`` villages at Jiashan's ratios (the
    province demo's synthetic counties): 776 workers for 760 grids, 628 of 760 grids with an
    auxiliary police officer, 42 of 174 villages key."""
    return StaffFigures(
        full_time_workers=grids + round(grids * (FULL_TIME_WORKERS - JIASHAN_GRIDS) / JIASHAN_GRIDS),
        aux_police_grids=round(grids * AUX_POLICE_GRIDS / JIASHAN_GRIDS),
        community_police_villages=min(villages, round(villages * COMMUNITY_POLICE_VILLAGES / JIASHAN_VILLAGES)),
    )


def build_staff(
    grids: pd.DataFrame,
    villages: pd.DataFrame,
    rng: np.random.Generator,
    people: PersonFactory,
    figures: StaffFigures = JIASHAN_FIGURES,
) -> pd.DataFrame:
    """One row per posting: name, phone, id_card, role, layer, area_code.

    A community police officer holds two postings to the key village: community
    police and chief grid leader, so every grid of the village shows them. Villages
    without a ``kind`` in their attrs (the province demo's) weigh like rural ones.
    """
    codes = grids["code"].to_numpy()
    n = len(codes)
    workers, aux_grids, key_villages = (
        figures.full_time_workers,
        figures.aux_police_grids,
        figures.community_police_villages,
    )
    if not aux_grids <= n <= workers or len(villages) < key_villages:
        raise StaffingError(
            f"need {aux_grids}..{workers} grids and >= {key_villages} villages, "
            f"got {n} grids and {len(villages)} villages"
        )
    households = grids["households"].to_numpy()
    # The busiest grids get the second full-time worker.
    second = np.argsort(-households, kind="stable")[: workers - n]
    village_kind = dict(zip(villages["code"], villages["attrs"].map(lambda a: a.get("kind")), strict=True))
    urban = np.array([village_kind[p] == "community" for p in grids["parent_code"]])
    aux_weight = np.where(urban, 2.0, 1.0)
    aux = np.sort(rng.choice(n, aux_grids, replace=False, p=aux_weight / aux_weight.sum()))
    first_grid = grids.groupby("parent_code", sort=False)["code"].first()
    village_urban = np.array([village_kind[v] == "community" for v in first_grid.index])
    police_weight = np.where(village_urban, 3.0, 1.0)
    police = np.sort(rng.choice(len(first_grid), key_villages, replace=False, p=police_weight / police_weight.sum()))
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
