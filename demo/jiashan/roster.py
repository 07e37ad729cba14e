"""The rest of the demo's roster and its organisation units (组织架构), around the grid staff of
demo.jiashan.people: the 1+3+N team of every grid and the units that see and handle each area.

* organisation units: the county social governance centre (县社会治理中心), a comprehensive
  information command room (综合信息指挥室) per town, a work station per village (the 42 key
  villages, whose chief grid leader is a community police officer, flagged), a police station
  unit per station, and five county departments;
* a chief grid leader (总网格长) for every other village (a village cadre) and a liaison cadre
  (包联干部) per village, posted to the village;
* part-time grid workers (兼职网格员) in about half of the grids;
* a micro-grid leader (微网格长) in 92 % of the micro-grids (the staffing report shows the rest);
* a beat officer (警格民警) for every beat, member of the beat's police station;
* command-centre and department staff, members of their units;
* history: 5 % of the grids had an earlier leader, who has left; a few liaison postings end soon.

Start dates lie in the five years before the reference day; everything is drawn from the given
generator, so a seed gives the same roster. Rows are postings in ``gridmap import staff`` columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demo.jiashan.names import PersonFactory
from demo.jiashan.outline import COUNTY_CODE, COUNTY_NAME


def county_centre_code(county: str) -> str:
    return f"{county}-SZZX"


COUNTY_CENTRE = county_centre_code(COUNTY_CODE)
DEPARTMENTS = (
    ("SJJ", "嘉善县市场监督管理局"),
    ("YJJ", "嘉善县应急管理局"),
    ("ZJJ", "嘉善县住房和城乡建设局"),
    ("XFJY", "嘉善县消防救援大队"),
    ("ZHZF", "嘉善县综合行政执法局"),
)
MICRO_LEADER_SHARE = 0.92
PART_TIME_SHARE = 0.5
FORMER_LEADER_SHARE = 0.05
ENDING_SOON = 12  # liaison postings ending within the month after the reference day


def village_station(code: str) -> str:
    return f"{code}-GZZ"


def build_org_units(
    towns: pd.DataFrame,
    villages: pd.DataFrame,
    stations: pd.DataFrame,
    key_villages: set[str],
    *,
    county: str = COUNTY_CODE,
    county_name: str = COUNTY_NAME,
    label: str = "",
) -> pd.DataFrame:
    """Organisation units, parents first: code, name, kind, layer, area_code, parent_code, is_key.
    ``county`` and ``county_name``: whose units (the province demo's synthetic counties have the
    same set as Jiashan); ``label`` ends the names of the county's own units (the synthetic
    counties' 合成: their towns, villages and stations carry it in their names already)."""
    centre = county_centre_code(county)
    rows: list[tuple[str, str, str, str, str, str | None, bool]] = [
        (centre, f"{county_name}社会治理中心{label}", "county_centre", "county", county, None, False)
    ]
    # Jiashan's department names start with its own name; another county's take that county's.
    rows += [
        (f"{county}-{c}", county_name + n.removeprefix(COUNTY_NAME) + label, "department", "county", county, centre,
         False)
        for c, n in DEPARTMENTS
    ]  # fmt: skip
    rows += [
        (f"{t.code}-ZHZX", f"{t.name}综合信息指挥室", "town_centre", "town", t.code, centre, False)
        for t in towns.itertuples()
    ]
    rows += [
        (village_station(v.code), f"{v.name}工作站", "village_station", "village", v.code, f"{v.parent_code}-ZHZX",
         v.code in key_villages)
        for v in villages.itertuples()
    ]  # fmt: skip
    rows += [
        (f"{s.code}-PCS", str(s.name), "police_station", "station", s.code, centre, False)
        for s in stations.itertuples()
    ]
    columns = ["code", "name", "kind", "layer", "area_code", "parent_code", "is_key"]
    return pd.DataFrame(rows, columns=columns)


def _dates(rng: np.random.Generator, n: int, reference: pd.Timestamp, years: float = 5.0) -> list[str]:
    days = rng.integers(30, int(365 * years), size=n)
    day = reference.tz_convert("Asia/Shanghai").normalize().tz_localize(None)
    return [(day - pd.Timedelta(days=int(d))).date().isoformat() for d in days]


def build_roster(
    *,
    staff: pd.DataFrame,
    towns: pd.DataFrame,
    villages: pd.DataFrame,
    grids: pd.DataFrame,
    micro_grids: pd.DataFrame,
    stations: pd.DataFrame,
    beats: pd.DataFrame,
    rng: np.random.Generator,
    people: PersonFactory,
    reference: pd.Timestamp,
    county: str = COUNTY_CODE,
    county_name: str = COUNTY_NAME,
    label: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(postings, organisation units): ``staff`` (demo.jiashan.people) with dates and units, and
    the rest of the roster (see the module docstring); ``county``, ``county_name`` and ``label``
    as for ``build_org_units``."""
    key = set(staff.loc[staff["role"] == "chief_grid_leader", "area_code"])
    units = build_org_units(towns, villages, stations, key, county=county, county_name=county_name, label=label)
    village_of = dict(zip(grids["code"], grids["parent_code"], strict=True))
    parts: list[pd.DataFrame] = []

    core = staff.copy()
    core["org_unit"] = [
        village_station(village_of.get(c, c) if lay == "grid" else c)
        for c, lay in zip(core["area_code"], core["layer"], strict=True)
    ]
    core["starts_on"] = _dates(rng, len(core), reference)
    # A person's postings start together (the police officer's two postings to a village).
    core["starts_on"] = core.groupby("id_card")["starts_on"].transform("first")
    parts.append(core)

    def posted(role: str, layer: str, codes: list[str], org: list[str | None]) -> pd.DataFrame:
        frame = people.draw(len(codes))
        frame["role"], frame["layer"], frame["area_code"], frame["org_unit"] = role, layer, codes, org
        frame["starts_on"] = _dates(rng, len(codes), reference)
        return frame

    others = sorted(set(villages["code"]) - key)
    parts.append(posted("chief_grid_leader", "village", others, [village_station(v) for v in others]))
    all_villages = villages["code"].tolist()
    liaison = posted("liaison_cadre", "village", all_villages, [None] * len(all_villages))
    soon = min(ENDING_SOON, len(liaison))  # a small synthetic county may have fewer villages
    ending = rng.choice(len(liaison), soon, replace=False)
    day = reference.tz_convert("Asia/Shanghai").normalize().tz_localize(None)
    liaison["ends_on"] = None
    liaison.loc[ending, "ends_on"] = [
        (day + pd.Timedelta(days=int(d))).date().isoformat() for d in rng.integers(1, 30, soon)
    ]
    parts.append(liaison)
    grid_codes = grids["code"].to_numpy()
    part_time = sorted(rng.choice(grid_codes, int(len(grid_codes) * PART_TIME_SHARE), replace=False).tolist())
    parts.append(posted("part_time_worker", "grid", part_time, [village_station(village_of[g]) for g in part_time]))
    micro_codes = micro_grids["code"].to_numpy()
    led = sorted(rng.choice(micro_codes, int(len(micro_codes) * MICRO_LEADER_SHARE), replace=False).tolist())
    micro_grid_of = dict(zip(micro_grids["code"], micro_grids["parent_code"], strict=True))
    parts.append(
        posted("micro_grid_leader", "micro_grid", led, [village_station(village_of[micro_grid_of[m]]) for m in led])
    )
    parts.append(posted("beat_officer", "beat", beats["code"].tolist(), [f"{s}-PCS" for s in beats["parent_code"]]))
    for unit in units.itertuples():
        size = {"county_centre": 6, "town_centre": 4, "department": 3}.get(str(unit.kind), 0)
        if size:
            role = "department_staff" if unit.kind == "department" else "command_staff"
            parts.append(posted(role, str(unit.layer), [str(unit.area_code)] * size, [str(unit.code)] * size))

    # Former grid leaders: a posting that ended the day before the current leader's began.
    leaders = core[core["role"] == "grid_leader"].reset_index(drop=True)
    former = leaders.iloc[np.sort(rng.choice(len(leaders), int(len(leaders) * FORMER_LEADER_SHARE), replace=False))]
    history = people.draw(len(former))
    history["role"], history["layer"] = "grid_leader", "grid"
    history["area_code"], history["org_unit"] = former["area_code"].to_numpy(), former["org_unit"].to_numpy()
    began = pd.to_datetime(former["starts_on"]).to_numpy()
    history["ends_on"] = [pd.Timestamp(b - np.timedelta64(1, "D")).date().isoformat() for b in began]
    history["starts_on"] = [
        pd.Timestamp(b - np.timedelta64(int(d), "D")).date().isoformat()
        for b, d in zip(began, rng.integers(400, 1500, len(began)), strict=True)
    ]
    history["status"] = "left"
    parts.append(history)

    roster = pd.concat(parts, ignore_index=True)
    roster["status"] = roster.get("status", pd.Series(dtype=object)).fillna("active")
    if "ends_on" not in roster:
        roster["ends_on"] = None
    columns = ["name", "phone", "id_card", "status", "role", "layer", "area_code", "org_unit", "starts_on", "ends_on"]
    return roster[columns].astype(object).where(roster[columns].notna(), None), units
