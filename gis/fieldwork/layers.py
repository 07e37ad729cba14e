"""Field work as GeoJSON map layers: buildings not visited lately (points, or grids coloured by the
share not visited), a day's patrol tracks and a day's visits; in the display CRS of the map."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

from gis.fieldwork.coverage import _since, day_bounds, grid_unvisited, unvisited_by_grid, unvisited_rows
from gis.outputs.features import _display, check_display_crs
from gis.outputs.mapfilter import COORD_DECIMALS
from gis.people.scope import Scope
from gis.spatial.areas import Conn
from gis.spatial.crs import from_wgs84

# Share of a grid's buildings not visited -> fill colour (light: mostly visited; dark: mostly not).
UNVISITED_RAMP = ((0.1, "#fee5d9"), (0.3, "#fcae91"), (0.5, "#fb6a4a"), (0.75, "#de2d26"), (1.01, "#a50f15"))
TRACK_STYLE = {"color": "#2b8cbe", "weight": 3, "opacity": 0.85, "fill": False}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _points(
    rows: Any, lon_lat: tuple[list[float], list[float]], props: list[dict[str, Any]], display_crs: str
) -> dict[str, Any]:
    lon, lat = _display(np.asarray(lon_lat[0], dtype=float), np.asarray(lon_lat[1], dtype=float), display_crs)
    xs = np.round(lon, COORD_DECIMALS).tolist()
    ys = np.round(lat, COORD_DECIMALS).tolist()
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": p}
        for x, y, p in zip(xs, ys, props, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def unvisited_points(conn: Conn, days: int, scope: Scope, display_crs: str = "wgs84") -> dict[str, Any]:
    """Buildings inside ``scope`` not visited within ``days`` days, with their last visit. Built
    column-wise (county-wide this is tens of thousands of features: per-row attribute access on
    SQLAlchemy rows would be most of the time)."""
    check_display_crs(display_crs)
    since, rows = unvisited_rows(conn, days, scope)
    if not rows:
        return {"type": "FeatureCollection", "features": [], "since": since.isoformat()}
    ids, grids, households, lon, lat, last = zip(*rows, strict=True)
    x, y = _display(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), display_crs)
    xs = np.round(x, COORD_DECIMALS).tolist()
    ys = np.round(y, COORD_DECIMALS).tolist()
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [px, py]},
            "properties": {"id": i, "grid_code": g, "households": h, "last_visit_at": t},
        }
        for i, g, h, t, px, py in zip(ids, grids, households, last, xs, ys, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features, "since": since.isoformat()}


# The same layer written by PostgreSQL as GeoJSON text (WGS-84): county-wide it is tens of
# thousands of features, and building them as Python objects costs several times the query.
_UNVISITED_TEXT = (
    'SELECT coalesce(string_agg(concat(\'{{"type":"Feature","geometry":{{"type":"Point",'
    "\"coordinates\":[', round(ST_X(b.geom) * {scale}) / {scale}, ',', round(ST_Y(b.geom) * {scale}) / {scale}, "
    "']}},\"properties\":{{\"id\":', b.id, ',\"grid_code\":', coalesce(to_json(b.grid_code)::text, 'null'), "
    "',\"households\":', b.households, ',\"last_visit_at\":', coalesce(to_json(b.last_visited_at)::text, 'null'), "
    "'}}}}'), ',' ORDER BY b.id), '') AS features "
    "FROM buildings b WHERE {scope} AND (b.last_visited_at IS NULL OR b.last_visited_at < :since)"
)


def unvisited_points_json(conn: Conn, days: int, scope: Scope, display_crs: str = "wgs84") -> bytes:
    """``unvisited_points`` as GeoJSON bytes; written by the database when the display CRS is WGS-84."""
    check_display_crs(display_crs)
    if display_crs != "wgs84":
        return orjson.dumps(unvisited_points(conn, days, scope, display_crs))
    since = _since(days, dt.datetime.now(dt.UTC))
    where, params = scope.where("b")
    sql = _UNVISITED_TEXT.format(scale=f"{10 ** int(COORD_DECIMALS)}.0", scope=where)
    row = conn.execute(sa.text(sql), {**params, "since": since}).one()
    head = f'{{"type":"FeatureCollection","since":{orjson.dumps(since).decode()},"features":['
    return head.encode() + row.features.encode() + b"]}"


def unvisited_grids(
    conn: Conn, days: int, scope: Scope, display_crs: str = "wgs84", cache: Any = None
) -> dict[str, Any]:
    """The grids inside ``scope`` (simplified like every map layer), coloured by the share of their
    buildings not visited within ``days`` days, with the figures in their properties."""
    from gis.outputs import mapdata

    check_display_crs(display_crs)
    figures = unvisited_by_grid(conn, days, scope)
    grids = mapdata.layer_geojson(conn, "grid", display_crs=display_crs, cache=cache, scope=scope)
    features = []
    for feature in grids["features"]:  # copies: the cached layer is shared
        code = feature["properties"]["code"]
        if not scope.contains(code):
            continue
        f = figures.get(code, {"buildings": 0, "not_visited": 0, "households_not_visited": 0, "share_not_visited": 0})
        share = f["share_not_visited"]
        color = next(c for limit, c in UNVISITED_RAMP if share < limit)
        style = {"fillColor": color, "fillOpacity": 0.55, "color": "#555", "weight": 0.6}
        # ``share`` is what the maps' area popup shows (as a percentage).
        props = {**feature["properties"], **f, "share": share, "days": days, "style": style}
        features.append({**feature, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def grid_unvisited_points(conn: Conn, grid: str, days: int, scope: Scope, display_crs: str = "wgs84") -> dict[str, Any]:
    """A grid's buildings not visited within ``days`` days, as points."""
    check_display_crs(display_crs)
    data = grid_unvisited(conn, grid, days, scope)
    items = data["not_visited"]
    props = [
        {k: (_iso(v) if k == "last_visit_at" else v) for k, v in item.items() if k not in ("lon", "lat")}
        for item in items
    ]
    return _points(items, ([i["lon"] for i in items], [i["lat"] for i in items]), props, display_crs)


def tracks(
    conn: Conn, day: dt.date, scope: Scope, display_crs: str = "wgs84", grid: str | None = None
) -> dict[str, Any]:
    """The simplified tracks of the patrols started on a county day inside ``scope``."""
    check_display_crs(display_crs)
    start, end = day_bounds(day)
    where, params = scope.code_where("p.grid_code")
    grid_cond = "AND p.grid_code = :grid" if grid else ""
    rows = conn.execute(
        sa.text(
            "SELECT p.id, p.person_id, pe.name, p.grid_code, p.started_at, p.ended_at, p.point_count, "  # noqa: S608
            "p.flagged_count, p.length_m, ST_AsGeoJSON(p.track, 6)::json AS geometry "
            "FROM patrols p JOIN people pe ON pe.id = p.person_id "
            f"WHERE p.started_at >= :s AND p.started_at < :e AND p.track IS NOT NULL AND {where} {grid_cond} "
            "ORDER BY p.id"
        ),
        {**params, "s": start, "e": end, "grid": grid},
    ).mappings()
    features = []
    for r in rows:
        geometry = r["geometry"]
        if display_crs != "wgs84":
            coords = np.asarray(geometry["coordinates"], dtype=float)
            x, y = from_wgs84(coords[:, 0], coords[:, 1], display_crs)
            geometry = {"type": "LineString", "coordinates": np.round(np.column_stack([x, y]), COORD_DECIMALS).tolist()}
        props = {k: r[k] for k in ("id", "person_id", "name", "grid_code", "point_count", "flagged_count")}
        props.update(
            started_at=_iso(r["started_at"]),
            ended_at=_iso(r["ended_at"]),
            length_m=round(r["length_m"], 1),
            style=TRACK_STYLE,
        )
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def visits(
    conn: Conn, day: dt.date, scope: Scope, display_crs: str = "wgs84", grid: str | None = None
) -> dict[str, Any]:
    """The visits made on a county day whose building lies inside ``scope``."""
    check_display_crs(display_crs)
    start, end = day_bounds(day)
    where, params = scope.where("b")
    grid_cond = "AND b.grid_code = :grid" if grid else ""
    rows = conn.execute(
        sa.text(
            "SELECT v.id, v.kind, v.person_id, pe.name, v.building_id, b.grid_code, v.at, "  # noqa: S608
            "v.knows_people AND v.knows_family AND v.knows_address AND v.knows_situation AS four_knows, "
            "ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat "
            "FROM visits v JOIN buildings b ON b.id = v.building_id JOIN people pe ON pe.id = v.person_id "
            f"WHERE v.at >= :s AND v.at < :e AND {where} {grid_cond} ORDER BY v.at, v.id"
        ),
        {**params, "s": start, "e": end, "grid": grid},
    ).all()
    props = [
        {
            "id": r.id,
            "kind": r.kind,
            "person_id": r.person_id,
            "name": r.name,
            "building_id": r.building_id,
            "grid_code": r.grid_code,
            "at": _iso(r.at),
            "four_knows": r.four_knows,
        }
        for r in rows
    ]
    return _points(rows, ([r.lon for r in rows], [r.lat for r in rows]), props, display_crs)
