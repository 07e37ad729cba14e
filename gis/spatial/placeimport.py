"""Importing places (points of interest) from a list: ``gridmap import places FILE`` and
``POST /places/import``.

A file (CSV in UTF-8 or GBK/GB18030, or XLSX; gis.bulk.readers) has one place per row: ``name``
(名称), ``aliases`` (别名, separated by ; ， 、 | or /), ``kind`` (类型: a code of
``gis.core.vocab.PLACE_KINDS`` or its Chinese label; ``other`` when empty), and where it is:
``address`` (地址, matched to a standard address: a house or finer) and/or ``lon``/``lat``
(经度/纬度) in ``crs`` (坐标系: wgs84, gcj02 or bd09; the default is the caller's). With both, the
coordinate is the position and the address the standard address the name stands for.

All or nothing: every row is checked first, and one bad row means nothing is written; the error
lists every bad row as (row, field, value, reason), rows numbered as the spreadsheet shows them
(header = row 1). A place is identified by its normalised name and its context (its address, or
its town and village), so importing the same file again updates the places, never repeats them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gis.bulk.readers import RawTable
from gis.core.vocab import PLACE_KIND_LABELS, PLACE_KINDS
from gis.spatial.address_text import AddressError, normalize_address
from gis.spatial.areas import Conn
from gis.spatial.crs import InputCRS, UnknownCRSError, parse_crs, to_wgs84
from gis.spatial.lookupinput import range_error
from gis.spatial.places import MAX_NAME_LENGTH, MIN_NAME_LENGTH

MAX_NAME = 100
# A place stands for a house, a building or a room; a road or a village is not a place's address.
ADDRESS_PRECISIONS = ("house", "building", "room", "place")
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "名称", "地点名称", "名字"),
    "aliases": ("aliases", "alias", "别名", "俗称"),
    "kind": ("kind", "类型", "类别", "种类"),
    "address": ("address", "地址", "标准地址"),
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "crs": ("crs", "坐标系"),
}
_ALIAS_SPLIT = re.compile("[;；,，、|/]")
_KINDS = {**{k: k for k in PLACE_KINDS}, **{label: code for code, label in PLACE_KIND_LABELS.items()}}


@dataclass(frozen=True)
class Problem:
    row: int
    field: str
    value: object
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field} {self.value!r}: {self.reason}"


class PlaceImportError(ValueError):
    """The file was refused; nothing was stored. ``problems`` names every bad row."""

    def __init__(self, problems: list[Problem], message: str | None = None):
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(message or f"{len(problems)} problem(s), nothing was stored: {shown}{more}")


@dataclass
class PlaceImportResult:
    rows: int
    inserted: int = 0
    updated: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Place:
    row: int
    name: str
    normalized: str
    names: tuple[str, ...]  # normalised name first, then the aliases
    kind: str
    address_text: str | None
    address_id: int | None
    context: str
    lon: float
    lat: float


def _columns(raw: RawTable) -> dict[str, str]:
    folded = {str(c).strip().lower(): str(c) for c in raw.frame.columns}
    found = {}
    for name, spellings in COLUMNS.items():
        for spelling in spellings:
            if spelling.lower() in folded:
                found[name] = folded[spelling.lower()]
                break
    if "name" not in found or not ({"address", "lon", "lat"} & set(found)):
        have = ", ".join(str(c) for c in raw.frame.columns) or "(no columns)"
        raise PlaceImportError(
            [Problem(1, "header", have, "needs a name column (名称) and address (地址) or lon and lat (经度, 纬度)")]
        )
    return found


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


class _Checker:
    """Checks one row at a time against the database (addresses, boundaries)."""

    def __init__(self, conn: Conn, default_crs: InputCRS):
        self.conn = conn
        self.default_crs = default_crs
        self.problems: list[Problem] = []

    def bad(self, row: int, field_name: str, value: object, reason: str) -> None:
        self.problems.append(Problem(row, field_name, value, reason))

    def names(self, row: int, name: str | None, aliases: str | None) -> tuple[str, ...] | None:
        if name is None:
            self.bad(row, "name", name, "is required")
            return None
        if len(name) > MAX_NAME:
            self.bad(row, "name", name, f"is {len(name)} characters long, at most {MAX_NAME}")
            return None
        out: list[str] = []
        for field_name, text in [("name", name)] + [("aliases", a.strip()) for a in _ALIAS_SPLIT.split(aliases or "")]:
            if field_name == "aliases" and not text:
                continue
            try:
                norm = normalize_address(text)
            except AddressError as exc:
                self.bad(row, field_name, text, str(exc))
                return None
            if not MIN_NAME_LENGTH <= len(norm) <= MAX_NAME_LENGTH:
                limits = f"{MIN_NAME_LENGTH} to {MAX_NAME_LENGTH}"
                self.bad(row, field_name, text, f"must be {limits} characters long once normalised, not {len(norm)}")
                return None
            if norm not in out:
                out.append(norm)
        return tuple(out)

    def kind(self, row: int, value: str | None) -> str | None:
        if value is None:
            return "other"
        code = _KINDS.get(value.lower() if value.isascii() else value)
        if code is None:
            accepted = ", ".join(f"{k} ({PLACE_KIND_LABELS[k]})" for k in PLACE_KINDS)
            self.bad(row, "kind", value, f"unknown kind; accepted: {accepted}")
        return code

    def coordinate(self, row: int, cells: Mapping[str, str | None]) -> tuple[float, float] | None | bool:
        """WGS-84 point, None when no coordinate was given, False when it is bad (reported)."""
        lon_text, lat_text = cells.get("lon"), cells.get("lat")
        if lon_text is None and lat_text is None:
            return None
        ok = True
        for name, text in (("lon", lon_text), ("lat", lat_text)):
            if _number(text) is None:
                self.bad(
                    row, name, text, "must be a number (decimal degrees)" if text else "is required with the other"
                )
                ok = False
        try:
            crs_text = cells.get("crs")
            crs = parse_crs(crs_text) if crs_text else self.default_crs
        except UnknownCRSError as exc:
            self.bad(row, "crs", cells.get("crs"), str(exc))
            return False
        if not ok:
            return False
        lon, lat = float(_number(lon_text) or 0.0), float(_number(lat_text) or 0.0)
        error = range_error(lon, lat)
        if error is not None:
            self.bad(row, error.param, lon if error.param == "lon" else lat, error.reason)
            return False
        x, y = (lon, lat) if crs is InputCRS.wgs84 else to_wgs84(lon, lat, crs)
        status = self.conn.execute(
            sa.text("SELECT (gridmap_assign(ST_SetSRID(ST_MakePoint(:x, :y), 4326), now())).assign_status"),
            {"x": x, "y": y},
        ).scalar_one()
        if status == "outside_jurisdiction":
            self.bad(row, "lon", lon, f"({lon}, {lat}) in {crs.value} lies outside the county")
            return False
        return float(x), float(y)

    def address(self, row: int, text: str) -> tuple[int | None, str, float, float] | None:
        from gis.spatial.geocode import geocode

        try:
            result = geocode(self.conn, text)
        except AddressError as exc:
            self.bad(row, "address", text, str(exc))
            return None
        m = result.match
        if m is None or m.precision not in ADDRESS_PRECISIONS:
            best = result.candidates[0] if result.candidates else None
            hint = f"; the best candidate is {best.full_text} ({best.precision}, {best.score:.2f})" if best else ""
            self.bad(row, "address", text, f"matches no standard house or building with enough confidence{hint}")
            return None
        return m.address_id, m.found or normalize_address(m.full_text), m.lon, m.lat

    def context_of(self, lon: float, lat: float) -> str:
        """Town and village names of a position (for a place given by coordinate only)."""
        row = self.conn.execute(
            sa.text(
                "SELECT coalesce(t.name, '') || coalesce(v.name, '') FROM "
                "(SELECT (gridmap_assign(ST_SetSRID(ST_MakePoint(:x, :y), 4326), now())).*) a "
                "LEFT JOIN areas t ON t.layer = 'town' AND t.code = a.town_code AND t.gen_to IS NULL "
                "LEFT JOIN areas v ON v.layer = 'village' AND v.code = a.village_code AND v.gen_to IS NULL"
            ),
            {"x": lon, "y": lat},
        ).scalar_one()
        return str(row or "")


def check_places(conn: Conn, raw: RawTable, default_crs: InputCRS | str = InputCRS.wgs84) -> list[_Place]:
    """Every row checked; raises PlaceImportError naming every bad row."""
    columns = _columns(raw)
    try:
        crs = parse_crs(default_crs)
    except UnknownCRSError as exc:
        raise PlaceImportError([Problem(0, "crs", default_crs, str(exc))]) from None
    checker = _Checker(conn, crs)
    places: list[_Place] = []
    seen: dict[tuple[str, str], int] = {}
    records = raw.frame.to_dict("records")
    for row, record in zip(raw.rows.tolist(), records, strict=True):
        cells = {name: _cell(record.get(column)) for name, column in columns.items()}
        before = len(checker.problems)
        names = checker.names(row, cells.get("name"), cells.get("aliases"))
        kind = checker.kind(row, cells.get("kind"))
        point = checker.coordinate(row, cells)
        address_text = cells.get("address")
        resolved = checker.address(row, address_text) if address_text else None
        if point is None and address_text is None:
            checker.bad(row, "address", None, "give an address (地址) or lon and lat (经度, 纬度)")
        if len(checker.problems) > before or names is None or kind is None or point is False:
            continue
        if address_text is not None and resolved is None:
            continue
        address_id, context = (resolved[0], resolved[1]) if resolved else (None, "")
        if isinstance(point, tuple):
            lon, lat = point
        elif resolved is not None:
            lon, lat = resolved[2], resolved[3]
        else:
            continue
        context = context or checker.context_of(lon, lat)
        key = (names[0], context)
        if key in seen:
            checker.bad(row, "name", cells.get("name"), f"repeats row {seen[key]} (same name at the same place)")
            continue
        seen[key] = row
        name = str(cells.get("name"))
        places.append(_Place(row, name, names[0], names, kind, address_text, address_id, context, lon, lat))
    if checker.problems:
        raise PlaceImportError(checker.problems)
    return places


def store_places(conn: Conn, places: list[_Place], source: str = "") -> tuple[int, int]:
    """Insert or update (by normalised name and context); the names are replaced. (inserted, updated)."""
    inserted = updated = 0
    for p in places:
        row = conn.execute(
            sa.text(
                "INSERT INTO places (name, normalized, kind, address_text, address_id, address_normalized, context, "
                "geom, source) VALUES (:name, :norm, :kind, :atext, :aid, :anorm, :ctx, "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4326), :src) "
                "ON CONFLICT (normalized, context) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, "
                "address_text = EXCLUDED.address_text, address_id = EXCLUDED.address_id, "
                "address_normalized = EXCLUDED.address_normalized, geom = EXCLUDED.geom, "
                "source = EXCLUDED.source, updated_at = now() "
                "RETURNING id, (xmax = 0) AS fresh"
            ),
            {
                "name": p.name,
                "norm": p.normalized,
                "kind": p.kind,
                "atext": p.address_text,
                "aid": p.address_id,
                "anorm": p.context if p.address_text else None,
                "ctx": p.context,
                "x": p.lon,
                "y": p.lat,
                "src": source,
            },
        ).one()
        inserted, updated = (inserted + 1, updated) if row.fresh else (inserted, updated + 1)
        conn.execute(sa.text("DELETE FROM place_names WHERE place_id = :id"), {"id": row.id})
        conn.execute(
            sa.text("INSERT INTO place_names (place_id, name, is_alias) VALUES (:id, :name, :alias)"),
            [{"id": row.id, "name": n, "alias": i > 0} for i, n in enumerate(p.names)],
        )
    return inserted, updated


def import_places(
    conn: Conn, raw: RawTable, *, default_crs: InputCRS | str = InputCRS.wgs84, source: str = ""
) -> PlaceImportResult:
    """Check every row, then store them all in the caller's transaction; see the module docstring."""
    places = check_places(conn, raw, default_crs)
    inserted, updated = store_places(conn, places, source or raw.path.name)
    return PlaceImportResult(len(raw), inserted, updated)
