"""What an export selects: the layer registry (boundary and point layers, their columns and time
columns), the SQL of one layer's rows (generation in force or at ``as_of``, the time window, the
incident filter and the caller's scope), and the rows read and masked for the reader's role."""

from __future__ import annotations

import datetime as dt
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gis.core.privacy import (
    ID_CARD_FIELDS,
    NAME_FIELDS,
    PHONE_FIELDS,
    mask_id_card,
    mask_name,
    mask_phone,
    role_sees_personal_data,
)
from gis.core.timeparse import TimeValueError, check_window
from gis.incidents.filter import FilterError, IncidentFilter
from gis.people.scope import WHOLE_COUNTY
from gis.spatial.areas import IN_GENERATION, Conn, current_generation, generation_at


class ExportError(ValueError):
    """A bad export request: unknown layer, format or CRS, or a filter that does not apply."""


# Boundary layers: public name -> value of areas.layer.
AREA_LAYERS = {
    "counties": "county",
    "towns": "town",
    "villages": "village",
    "grids": "grid",
    "micro_grids": "micro_grid",
    "stations": "station",
    "beats": "beat",
}
ASSIGNED = ("town_code", "village_code", "grid_code", "micro_grid_code", "station_code", "beat_code", "assign_status")
# Point layers: columns in output order (the same as the ogc views) and the time column, if any.
POINT_LAYERS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "buildings": (
        (
            "id", "code", "name", "floors", "households", "residents", "new_residents", "is_rental",
            "landlord_name", "landlord_phone", "landlord_id_card", "tenants", "rooms", "escape_window",
            "ebike_charging", "wiring", "risk_level", "last_inspected_at", *ASSIGNED,
        ),
        None,
    ),
    "addresses": (
        (
            "id", "full_text", "road", "house_no", "building_no", "unit_no", "room_no", "group_no",
            "precision", "building_id", *ASSIGNED,
        ),
        None,
    ),
    "hazards": (
        (
            "id", "category", "severity", "status", "description", "found_at", "rectify_by",
            "rectified_at", "building_id", *ASSIGNED,
        ),
        "found_at",
    ),
    "incidents": (
        (
            "id", "category", "source", "reported_at", "address_text", "description", "reporter_name",
            "reporter_phone", "status", "deadline_at", "escalation_level", "escalated_at", "closed_at",
            *ASSIGNED,
        ),
        "reported_at",
    ),
}  # fmt: skip
LAYER_NAMES = (*AREA_LAYERS, *POINT_LAYERS)


def check_layer_name(layer: str) -> str:
    if layer not in LAYER_NAMES:
        raise ExportError(f"unknown layer {layer!r}; layers are {', '.join(LAYER_NAMES)}")
    return layer


def time_column(layer: str) -> str | None:
    return POINT_LAYERS[layer][1] if layer in POINT_LAYERS else None


def point_filter(
    layer: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
    *,
    error: type[ExportError] = ExportError,
) -> tuple[str, dict[str, Any]]:
    """The condition (``TRUE`` for none) and parameters selecting a point layer's rows: the time
    window ``start``/``end`` (or that of ``incidents``) on the layer's time column; for the
    incidents layer the whole incident filter (``gis.incidents.filter``), which other layers refuse."""
    flt = incidents or IncidentFilter()
    try:
        check_window(start or flt.start, end or flt.end)
        flt = flt.replace(start=start or flt.start, end=end or flt.end)
    except (TimeValueError, FilterError) as exc:
        raise error(str(exc)) from None
    if layer == "incidents":
        return flt.where("")
    column = time_column(layer)
    if not flt.current().unscoped():
        raise error(f"incident filters apply to the incidents layer, not {layer!r}")
    if (flt.start or flt.end) and column is None:
        raise error(f"layer {layer!r} has no time column; start/end apply to incidents and hazards")
    # The caller's scope holds for every point layer: they all carry the assignment columns.
    scope_cond, params = flt.scope.where("")
    conds = [] if flt.scope.whole else [scope_cond]
    for key, op in (("start", ">="), ("end", "<")):
        if getattr(flt, key) is not None:
            conds.append(f"{column} {op} :{key}")
            params[key] = getattr(flt, key)
    return " AND ".join(conds) or "TRUE", params


def layer_query(
    conn: Conn,
    layer: str,
    *,
    as_of: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
) -> tuple[str, dict[str, Any]]:
    """SQL (geometry as WKB in column ``wkb``) and parameters for one layer's rows, unmasked."""
    check_layer_name(layer)
    if layer in AREA_LAYERS:
        if start or end or (incidents is not None and not incidents.unscoped()):
            raise ExportError(f"layer {layer!r} is a boundary layer; use as_of, not start/end")
        # A scoped caller gets the units inside the scope (a town key: its town, its villages, ...).
        in_scope, scope_params = (incidents.scope if incidents is not None else WHOLE_COUNTY).code_where("code")
        generation = current_generation(conn) if as_of is None else generation_at(conn, as_of)
        if generation is None:
            when = "now" if as_of is None else f"at {as_of.isoformat()}"
            raise ExportError(f"no boundary generation was in force {when}")
        # Identifiers come from the fixed registry above, never from the caller.
        sql = (
            "SELECT code, name, parent_code, households, gen_from AS generation, ST_AsBinary(geom) AS wkb "  # noqa: S608
            f"FROM areas WHERE layer = :layer AND {IN_GENERATION} AND {in_scope} ORDER BY code"
        )
        return sql, {"layer": AREA_LAYERS[layer], "g": generation, **scope_params}
    if as_of is not None:
        raise ExportError(f"as_of applies to boundary layers, not {layer!r}")
    columns, _ = POINT_LAYERS[layer]
    where, params = point_filter(layer, start, end, incidents)
    sql = f"SELECT {', '.join(columns)}, ST_AsBinary(geom) AS wkb FROM {layer} WHERE {where} ORDER BY id"  # noqa: S608
    return sql, params


def mask_frame(frame: pd.DataFrame, role: str | None) -> pd.DataFrame:
    """Personal fields masked with the rules of gis.core.privacy, unless ``role`` may see them."""
    if role_sees_personal_data(role):
        return frame
    out = frame.copy()
    for fields, fn in ((PHONE_FIELDS, mask_phone), (ID_CARD_FIELDS, mask_id_card), (NAME_FIELDS, mask_name)):
        for column in fields & set(out.columns):
            out[column] = out[column].map(lambda v, f=fn: f(v) if isinstance(v, str) else v)
    return out


def load_layer_frame(
    conn: Conn,
    layer: str,
    *,
    role: str | None = "viewer",
    as_of: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    incidents: IncidentFilter | None = None,
) -> gpd.GeoDataFrame:
    """One layer as a GeoDataFrame in WGS-84, masked for ``role``."""
    sql, params = layer_query(conn, layer, as_of=as_of, start=start, end=end, incidents=incidents)
    result = conn.execute(sa.text(sql), params)
    columns = list(result.keys())[:-1]  # the last column is the geometry
    rows = result.all()
    frame = pd.DataFrame([tuple(r)[:-1] for r in rows], columns=columns)
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else np.array([], dtype=object)
    gdf = gpd.GeoDataFrame(mask_frame(frame, role), geometry=geoms, crs="EPSG:4326")
    return gdf
