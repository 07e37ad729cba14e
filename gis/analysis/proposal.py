"""A redistricting proposal as a boundary draft, and its run row (``redistrict_runs``, migration 0023).

``propose`` reads the micro-grids of a town or village, solves each village
(gis.analysis.redistrict), writes the units as a grid DRAFT through boundaries.drafts (so the planner
inspects it in the impact preview, edits it in the editor and publishes it as any draft), validates
it with boundaries.validate and reports: households (and workload) per unit, Polsby-Popper
compactness, and the addresses that change grid (the impact preview's count), beside the same
figures of the grids in force. A draft that fails the boundary checks (coverage, nesting, codes,
household band) is discarded and the run reported infeasible with the findings: a proposal
either passes or says why not.

Codes: a unit keeps the code of the grid in force it shares the most households with (one unit a
grid), so staff postings and open incidents follow; a grid whose code is not kept is named in
``attrs.absorbs`` of the unit that took most of its households (its open incidents go there).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from boundaries import drafts
from boundaries.findings import Rules
from boundaries.households import count_households, covering_index
from boundaries.impact import preview_impact
from boundaries.validate import validate_draft
from gis.analysis.redistrict import Infeasible, Params, Progress, polsby_popper, spread_figures
from gis.analysis.redistrict_roads import add_shares, border_share, road_buffer, solve_with_roads
from gis.core.predicates import in_generation
from gis.spatial.areas import Conn, current_generation
from gis.spatial.roads import roads_within

# Grids are built from micro-grids (this module), micro-grids from buildings (gis.analysis.redistrict_micro).
LAYERS = ("grid", "micro_grid")
AREA_KINDS = {"grid": ("town", "village"), "micro_grid": ("town", "village", "grid")}
BALANCES = ("households", "workload")
WORKLOAD_DAYS = 90
# Findings that make a proposal unusable: coverage, nesting, codes, geometry, the band.
BLOCKING = {
    "invalid_geometry", "overlap", "gap", "not_nested", "duplicate_code", "malformed_code", "unknown_parent",
    "deleted_with_open_incidents", "households_low", "households_high", "empty_draft",
}  # fmt: skip


class UnknownAreaError(LookupError):
    pass


def area_kind(conn: Conn, code: str, layer: str = "grid") -> str:
    """'town' or 'village' (or 'grid', when proposing micro-grids) for a polygon in force, else
    UnknownAreaError."""
    kinds = AREA_KINDS[layer]
    g = current_generation(conn)
    found = conn.execute(
        sa.text(f"SELECT layer FROM areas WHERE code = :c AND layer = ANY(:k) AND {in_generation()} LIMIT 1"),  # noqa: S608
        {"c": code, "g": g, "k": list(kinds)},
    ).scalar()
    if found is None:
        raise UnknownAreaError(f"area_code {code!r} is not a {' or '.join(kinds)} in force")
    return str(found)


def load_micro_grids(conn: Conn, area: str) -> gpd.GeoDataFrame:
    """The micro-grids of the villages of ``area`` (a village, or a town's villages), each in the
    village holding its representative point, with households and 90 days' incidents."""
    g = current_generation(conn)
    rows = conn.execute(
        sa.text(
            "SELECT v.code AS village, m.code, m.households, ST_AsBinary(m.geom) AS wkb, "  # noqa: S608
            "(SELECT count(*) FROM incidents i WHERE i.micro_grid_code = m.code "
            " AND i.reported_at >= now() - make_interval(days => :days)) AS workload, "
            "(SELECT g.code FROM areas g WHERE g.layer = 'grid' AND "
            f"{in_generation('g')} AND g.geom && m.geom AND ST_Intersects(g.geom, ST_PointOnSurface(m.geom)) "
            " ORDER BY g.code LIMIT 1) AS current "
            "FROM areas v JOIN areas m ON m.layer = 'micro_grid' AND "
            f"{in_generation('m')} AND m.geom && v.geom AND ST_Intersects(v.geom, ST_PointOnSurface(m.geom)) "
            f"WHERE v.layer = 'village' AND {in_generation('v')} AND (v.code = :a OR v.parent_code = :a) "
            "ORDER BY v.code, m.code"
        ),
        {"a": area, "g": g, "days": WORKLOAD_DAYS},
    ).all()
    frame = gpd.GeoDataFrame(
        {
            "village": [r.village for r in rows],
            "code": [r.code for r in rows],
            "households": [int(r.households or 0) for r in rows],
            "workload": [float(r.workload) for r in rows],
            "current": [r.current or "" for r in rows],  # the grid in force now
        },
        geometry=gpd.GeoSeries(shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else [], crs=4326),
    )
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM buildings)")).scalar() and len(frame):
        # Validation counts households from the buildings (boundaries.households): count the same way.
        geoms = np.asarray(frame.geometry.values, dtype=object)
        frame["households"] = count_households(conn, np.asarray(frame["code"], dtype=object), geoms)
    return frame


def _within(villages: Sequence[str], values: Sequence[float]) -> float:
    """The mean over villages of the spread (max - min) between their units: what redrawing inside
    the villages can change (units never cross a village edge)."""
    per: dict[str, list[float]] = {}
    for v, x in zip(villages, values, strict=True):
        per.setdefault(v, []).append(float(x))
    return round(float(np.mean([max(xs) - min(xs) for xs in per.values()])), 1) if per else 0.0


def _figures(
    metric: gpd.GeoSeries, villages: list[str], households: list[int], workload: list[float]
) -> dict[str, Any]:
    pp = polsby_popper(metric)
    return {
        "units": len(households),
        "households": {**spread_figures(households), "within_village_spread": _within(villages, households)},
        "workload": {**spread_figures(workload), "within_village_spread": _within(villages, workload)},
        "polsby_popper": {"min": round(float(pp.min()), 3), "mean": round(float(pp.mean()), 3)} if len(pp) else {},
    }


def _codes(
    units: gpd.GeoDataFrame,
    old: gpd.GeoDataFrame,
    mg: gpd.GeoDataFrame,
    taken: set[str],
    digits: int = 3,
    noun: str = "网格",
) -> None:
    """Set ``code``/``name``/``attrs`` of each unit from the polygons in force (see the module doc): a
    unit's code is its parent's code and ``digits`` digits (3 for grids, 2 for micro-grids)."""
    idx = covering_index(
        np.asarray(old["code"], dtype=object),
        np.asarray(old.geometry.values, dtype=object),
        np.asarray(mg.geometry.representative_point().values, dtype=object),
    )
    old_codes = list(old["code"])
    old_code = [old_codes[i] if i >= 0 else None for i in idx]
    share: dict[tuple[int, str], int] = {}
    for unit, code, hh in zip(mg["unit"], old_code, mg["households"], strict=True):
        if code is not None:
            share[(int(unit), str(code))] = share.get((int(unit), str(code)), 0) + int(hh) + 1
    names = dict(zip(old["code"], old["name"], strict=True))
    given: dict[int, str] = {}
    for (unit, code), _n in sorted(share.items(), key=lambda kv: (-kv[1], kv[0])):
        village = units.loc[unit, "parent_code"]
        if (
            unit not in given
            and code not in given.values()
            and code.startswith(village)
            and len(code) == len(village) + digits
        ):
            given[unit] = code
    used = set(taken) | set(given.values())
    absorbs: dict[int, list[str]] = {}
    for code in sorted(set(old["code"]) - set(given.values())):
        mine = [(n, u) for (u, c), n in share.items() if c == code]
        if mine:
            absorbs.setdefault(max(mine)[1], []).append(code)
    for unit in units.index:
        village = units.loc[unit, "parent_code"]
        if unit not in given:
            n = 1
            while f"{village}{n:0{digits}d}" in used:
                n += 1
            given[unit] = f"{village}{n:0{digits}d}"
            used.add(given[unit])
        code = given[unit]
        units.loc[unit, "code"] = code
        units.loc[unit, "name"] = names.get(code) or f"{village}第{code[-digits:]}{noun}(方案)"
        units.at[unit, "attrs"] = {"absorbs": absorbs.get(unit, [])} if absorbs.get(unit) else {}


def propose(conn: Conn, area: str, params: Params, *, author: str, progress: Progress | None = None) -> dict[str, Any]:
    """Build the proposal for ``area``; returns the report (with ``draft_id``) or raises Infeasible."""
    if params.layer == "micro_grid":
        # Imported here: that module builds on this one's codes, figures and blocking findings.
        from gis.analysis.redistrict_micro import propose_micro_grids

        return propose_micro_grids(conn, area, params, author=author, progress=progress)
    report_progress: Progress = progress or (lambda _f, _m: None)
    low, high = params.band
    kind = area_kind(conn, area)
    report_progress(0.02, f"reading the micro-grids of {kind} {area}")
    mg = load_micro_grids(conn, area)
    if not len(mg):
        raise Infeasible(f"{kind} {area} has no micro-grids in force")
    mg["unit"] = -1
    villages = sorted(set(mg["village"]))
    lines = roads_within(conn, tuple(mg.total_bounds)) if params.roads else []
    buffer = road_buffer(lines, buffer_m=params.road_buffer_m)
    report_progress(0.05, f"{len(mg)} micro-grids in {len(villages)} villages and {len(lines)} roads read")
    reasons, notes = [], []
    offset, moves, splits = 0, 0, 0
    shares: dict[str, dict[str, float]] = {"proposal": {}, "current": {}}
    for k, village in enumerate(villages):
        rows = np.flatnonzero(mg["village"].to_numpy() == village)
        sub = mg.iloc[rows].reset_index(drop=True)
        try:
            res, found = solve_with_roads(
                village, sub, sub["households"].to_numpy(np.int64), sub["workload"].to_numpy(float), params, buffer
            )
        except Infeasible as exc:
            reasons.append(str(exc))
            continue
        mg.iloc[rows, mg.columns.get_loc("unit")] = res.labels + offset
        offset += int(res.labels.max()) + 1
        moves, splits = moves + res.moves, splits + res.splits
        notes += [f"village {village}: {n}" for n in res.notes]
        shares["proposal"] = add_shares(shares["proposal"], border_share(res.labels, found))
        shares["current"] = add_shares(shares["current"], border_share(sub["current"].to_numpy(), found))
        report_progress(0.05 + 0.6 * (k + 1) / len(villages), f"village {village} solved ({k + 1}/{len(villages)})")
    if reasons:
        raise Infeasible("; ".join(reasons))
    report_progress(0.7, "writing the draft")
    draft_id = drafts.create_draft(conn, "grid", area, author=author, note=f"redistricting proposal for {area}")
    old = drafts.load_features(conn, draft_id)
    dissolved = mg.dissolve(by="unit", aggfunc={"households": "sum", "workload": "sum", "village": "first"})
    units = gpd.GeoDataFrame(
        {
            "code": "",
            "name": "",
            "parent_code": dissolved["village"],
            "households": dissolved["households"].astype(int),
            "attrs": [{} for _ in range(len(dissolved))],
        },
        geometry=dissolved.geometry.values,
        crs=4326,
        index=dissolved.index,
    )
    taken = {str(c) for c in conn.execute(sa.text("SELECT code FROM areas WHERE layer = 'grid'")).scalars()}
    _codes(units, old, mg, taken - set(old["code"]))
    drafts.replace_features(conn, draft_id, units.reset_index(drop=True), actor=author, source="redistrict")
    report_progress(0.8, "validating the draft")
    rules = Rules(households={"grid": (low, high), "micro_grid": Rules().households["micro_grid"]})
    validation = validate_draft(conn, draft_id, rules)
    blocking = [f for f in validation.findings if f.kind in BLOCKING]
    if blocking:
        drafts.discard_draft(conn, draft_id, actor=author)
        raise Infeasible("the proposal fails validation: " + "; ".join(f.message for f in blocking[:10]))
    report_progress(0.9, "counting the addresses that change grid")
    impact = preview_impact(conn, draft_id)
    new_metric, old_metric = units.geometry.to_crs(4549), old.geometry.to_crs(4549)
    old_hh = (
        count_households(conn, np.asarray(old["code"], dtype=object), np.asarray(old.geometry.values, dtype=object))
        if len(old) and conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM buildings)")).scalar()
        else old["households"].fillna(0).astype(int).to_numpy()
    )
    pp = polsby_popper(new_metric)
    new_code = dict(zip(units.index, units["code"], strict=True))
    old_load = mg.groupby("current")["workload"].sum().to_dict()
    per_unit = [
        {"code": c, "village": v, "households": int(h), "workload": float(w), "polsby_popper": round(float(p), 3)}
        for c, v, h, w, p in zip(
            units["code"], units["parent_code"], units["households"], dissolved["workload"], pp, strict=True
        )
    ]
    return {
        "draft_id": draft_id,
        "area": area,
        "kind": kind,
        "params": {
            "band": [low, high],
            "balance": params.balance,
            "edge_slack": params.edge_slack,
            "layer": "grid",
            "roads": params.roads,
        },  # fmt: skip
        "micro_grids": len(mg),
        "villages": len(villages),
        "proposal": _figures(
            new_metric, list(units["parent_code"]), list(units["households"]), list(dissolved["workload"])
        ),
        "current": _figures(
            old_metric,
            [str(p) for p in old["parent_code"]],
            [int(h) for h in old_hh],
            [old_load.get(c, 0.0) for c in old["code"]],
        ),
        "addresses_changing_grid": int(impact["totals"]["addresses"]),
        "households_changing_grid": int(impact["totals"]["households"]),
        # How much of the borders between units (inside villages) runs along roads (table roads).
        "borders_on_roads": {"roads": len(lines), **shares, "notes": notes[:20]},
        "repair_moves": moves,
        "splits": splits,
        "warnings": [f.message for f in validation.findings if f.kind not in BLOCKING][:20],
        "units": per_unit,
        # The micro-grids whose grid changes: their parent_code once the proposal is published.
        "micro_grid_parents": [
            {"code": m, "from": c or None, "to": new_code[u]}
            for m, c, u in zip(mg["code"], mg["current"], mg["unit"], strict=True)
            if c != new_code[u]
        ],
    }


# --- run rows ---------------------------------------------------------------------------------

RUN_COLUMNS = (
    "id, area_code, params, status, progress, message, draft_id, report, author, created_at, started_at, finished_at"
)


def create_run(conn: Conn, area: str, params: dict[str, Any], author: str) -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO redistrict_runs (area_code, params, author) "
                "VALUES (:a, CAST(:p AS jsonb), :u) RETURNING id"
            ),
            {"a": area, "p": json.dumps(params), "u": author},
        ).scalar_one()
    )


def start_run(conn: Conn, area: str, params: dict[str, Any], author: str) -> int:
    """A queued run and its job (gis.work.tasks.redistrict), in the caller's transaction: the job
    exists if and only if the run does; the job's lock keeps two workers off one run."""
    from gis.work.jobs import defer
    from gis.work.tasks import REDISTRICT_QUEUE, REDISTRICT_TASK

    run_id = create_run(conn, area, params, author)
    defer(conn, REDISTRICT_TASK, {"run_id": run_id}, queue=REDISTRICT_QUEUE, lock=f"redistrict:{run_id}")
    return run_id


def get_run(conn: Conn, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.text(f"SELECT {RUN_COLUMNS} FROM redistrict_runs WHERE id = :id"), {"id": run_id}).first()  # noqa: S608
    return dict(row._mapping) if row is not None else None


def set_run(conn: Conn, run_id: int, **values: Any) -> None:
    """Update the named columns (their names are ours, never the caller's input)."""
    allowed = {"status", "progress", "message", "draft_id", "report", "started_at", "finished_at"}
    cols = sorted(values)
    if not cols or set(cols) - allowed:
        raise ValueError(f"cannot set {sorted(set(cols) - allowed)} on a run")
    params = {k: json.dumps(v) if k == "report" else v for k, v in values.items()}
    sets = ", ".join(f"{c} = CAST(:{c} AS jsonb)" if c == "report" else f"{c} = :{c}" for c in cols)
    conn.execute(sa.text(f"UPDATE redistrict_runs SET {sets} WHERE id = :id"), {**params, "id": run_id})  # noqa: S608


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def params_from(stored: dict[str, Any]) -> Params:
    band = stored.get("band") or [300, 500]
    return Params(
        band=(int(band[0]), int(band[1])),
        balance=str(stored.get("balance") or "households"),
        edge_slack=int(stored.get("edge_slack", Params.edge_slack)),
        roads=bool(stored.get("roads", Params.roads)),
        layer=str(stored.get("layer") or "grid"),
    )


def execute_run(conn: Conn, run_id: int, params: Params, progress: Callable[[float, str], None]) -> str:
    """Run ``run_id`` on ``conn`` (the proposal and the final state commit together); returns the status."""
    run = get_run(conn, run_id)
    if run is None:
        raise LookupError(f"no redistricting run {run_id}")
    try:
        report = propose(conn, run["area_code"], params, author=run["author"] or "redistrict", progress=progress)
    except Infeasible as exc:
        set_run(conn, run_id, status="infeasible", progress=1.0, message=str(exc), finished_at=now())
        return "infeasible"
    set_run(
        conn, run_id, status="done", progress=1.0, message="proposal ready", draft_id=report["draft_id"],
        report=report, finished_at=now(),
    )  # fmt: skip
    return "done"
