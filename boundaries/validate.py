"""Validation of a draft before publishing: a report of findings, each with a location.

Errors block publishing; warnings do not. Checks:

* ``invalid_geometry`` (error): self-intersections and other invalid rings;
* ``overlap`` (error) between polygons of the layer, and ``edge_mismatch`` (warning) where
  neighbours' edges do not match vertex for vertex (shapely's coverage check);
* ``gap`` (error): parts of a parent not covered by its children;
* ``not_nested`` (error): a polygon reaching outside its parent, or a polygon of the layer
  below straddling two of the new polygons;
* ``sliver`` (warning): polygon parts under the configured area;
* ``duplicate_code``, ``malformed_code``, ``unknown_parent`` (errors);
* ``households_low`` / ``households_high`` (warnings): households counted from the buildings
  inside, against the configured ranges for grids and micro-grids;
* ``no_grid_leader`` / ``no_grid_worker`` (errors when a predecessor grid had one, else
  warnings), ``no_aux_police`` and ``no_staff`` (warnings), ``posting_plan`` (error: a posting
  decision that does not fit) and ``posting_ends`` (warning): the people after the redraw's
  posting moves (boundaries/postingplan.py);
* ``deleted_with_open_incidents`` (error): a polygon removed while open incidents are assigned to
  it and no remaining polygon declares it takes them over (``attrs.absorbs``/``previous_code``).

The checks live by job: geometry and codes in boundaries/geomchecks.py, nesting in
boundaries/nesting.py, households in boundaries/households.py, the people in
boundaries/postingplan.py; the rules, findings and report in boundaries/findings.py. This module
assembles the report and checks the open incidents of deleted polygons.

Areas are measured in EPSG:4549 (metres), once for the whole layer, so the county's ~6,000
micro-grids validate in about a second.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from boundaries.drafts import DraftInfo, base_features, get_draft, load_features
from boundaries.findings import Finding, Report, Rules, _finding
from boundaries.geomchecks import check_layer_geometry
from boundaries.households import _check_households
from boundaries.nesting import _check_children
from gis.core.predicates import is_open
from gis.core.vocab import PARENT_LAYER
from gis.spatial.areas import Conn, load_layer

OPEN_INCIDENT = is_open()
ASSIGN_COLUMN = {
    "town": "town_code",
    "village": "village_code",
    "grid": "grid_code",
    "micro_grid": "micro_grid_code",
    "station": "station_code",
    "beat": "beat_code",
}


def validate_draft(conn: Conn, draft_id: int, rules: Rules | None = None) -> Report:
    """The full report for a draft: geometry checks plus households, staff and incidents."""
    rules = rules or Rules()
    info = get_draft(conn, draft_id)
    features = load_features(conn, draft_id)
    base = base_features(conn, info)
    whole = load_layer(conn, info.layer, info.base_generation)
    others = whole[~whole["code"].isin(set(base["code"]))].reset_index(drop=True)
    parent_layer = PARENT_LAYER.get(info.layer)
    parents = load_layer(conn, parent_layer, info.base_generation) if parent_layer else None
    findings: list[Finding] = []
    if not len(features):
        where = base.geometry.union_all().representative_point() if len(base) else shapely.Point(0, 0)
        findings.append(
            _finding("empty_draft", "error", f"draft {draft_id} has no polygons", None, where, metric=False, draw=False)
        )
        return Report(info.layer, 0, findings, draft_id)
    findings += check_layer_geometry(features, info.layer, parents, others, rules)
    # The people: the posting plan's problems (any layer) and, for grids, leaders and workers.
    # Imported here: boundaries.postingplan builds on this module.
    from boundaries.postingplan import posting_plan, staffing_findings

    findings += staffing_findings(posting_plan(conn, draft_id, features=features, base=base), features)
    # Overlay checks need valid shapes; invalid ones are already reported.
    valid = features[shapely.is_valid(np.asarray(features.geometry.values, dtype=object))].reset_index(drop=True)
    findings += _check_children(conn, info, valid, rules)
    findings += _check_households(conn, info.layer, valid, others, rules)
    findings += _check_deleted(conn, info, features, base)
    return Report(info.layer, len(features), findings, draft_id)


def _check_deleted(conn: Conn, info: DraftInfo, features: gpd.GeoDataFrame, base: gpd.GeoDataFrame) -> list[Finding]:
    gone = sorted(set(base["code"]) - set(features["code"]))
    column = ASSIGN_COLUMN.get(info.layer)
    if not gone or column is None:
        return []
    declared: set[str] = set()
    for attrs in features["attrs"]:
        declared |= set(attrs.get("absorbs", []) or [])
        if attrs.get("previous_code"):
            declared.add(attrs["previous_code"])
    rows = conn.execute(
        sa.text(
            f"SELECT {column}, count(*) FROM incidents WHERE {column} = ANY(:codes) AND {OPEN_INCIDENT} "  # noqa: S608
            f"GROUP BY {column}"
        ),
        {"codes": [c for c in gone if c not in declared]},
    ).all()
    old = dict(zip(base["code"], base.geometry.values, strict=True))
    return [
        _finding(
            "deleted_with_open_incidents",
            "error",
            f"{code} is deleted but holds {n} open incident(s); merge it into a neighbour or name a successor",
            code,
            old[code],
            metric=False,
        )
        for code, n in rows
    ]
