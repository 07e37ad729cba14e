"""Household visits (入户走访): recording one visit or a phone's batch, idempotently.

A visit names the person who made it, the building or a standard address in it (the building is
stored either way: coverage counts buildings), its kind, the four-knows checks, where and when,
and the incidents or hazards it produced. ``client_id`` is the phone's own id of the visit: a
batch resent after losing signal stores nothing twice and answers the stored visits again.

A batch is all or nothing: every row is checked (fields, references, scope) before anything is
written, and the first bad row is refused with the field and row index (``visits[3].kind``);
then one INSERT stores the rows. A building, address, incident or hazard outside the caller's
scope is answered like a missing one (404).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from gis.core.vocab import FOUR_KNOWS, VISIT_KINDS
from gis.fieldwork import inputs as fi
from gis.fieldwork.errors import FieldworkForbidden, FieldworkInputError, FieldworkNotFound
from gis.people.keys import Principal
from gis.spatial.areas import Conn
from gis.spatial.crs import to_wgs84

MAX_BATCH = 500
_FIELDS = frozenset(
    {
        "client_id",
        "person_id",
        "posting_id",
        "building_id",
        "address_id",
        "kind",
        "knows",
        "lon",
        "lat",
        "crs",
        "at",
        "note",
        "incident_ids",
        "hazard_ids",
    }
)
_CODES = "town_code, village_code, grid_code, micro_grid_code, station_code, beat_code"

# One round trip finds every row a batch refers to (with the codes its scope is checked on); only
# the branches a batch needs are sent, since planning the six costs more than running them.
_REFERENCE_BRANCHES = {
    "buildings": f"SELECT 'building' AS kind, id, id AS building_id, NULL::bigint AS person_id, {_CODES}, "  # noqa: S608
    "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM buildings WHERE id = ANY(:buildings)",
    "addresses": f"SELECT 'address', id, building_id, NULL, {_CODES}, ST_X(geom), ST_Y(geom) "  # noqa: S608
    "FROM addresses WHERE id = ANY(:addresses)",
    "people": "SELECT 'person', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
    "FROM people WHERE id = ANY(:people)",
    "postings": "SELECT 'posting', id, NULL, person_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
    "FROM postings WHERE id = ANY(:postings)",
    "incidents": f"SELECT 'incident', id, NULL, NULL, {_CODES}, NULL, NULL "  # noqa: S608
    "FROM incidents WHERE id = ANY(:incidents)",
    "hazards": f"SELECT 'hazard', id, NULL, NULL, {_CODES}, NULL, NULL FROM hazards WHERE id = ANY(:hazards)",  # noqa: S608
}
# The first branch fixes the column names and types of the union: typed for every later one.
_FIRST = (
    "SELECT NULL::text AS kind, NULL::bigint AS id, NULL::bigint AS building_id, NULL::bigint AS person_id, "
    "NULL::varchar AS town_code, NULL::varchar AS village_code, NULL::varchar AS grid_code, "
    "NULL::varchar AS micro_grid_code, NULL::varchar AS station_code, NULL::varchar AS beat_code, "
    "NULL::float8 AS lon, NULL::float8 AS lat WHERE false"
)


@functools.lru_cache(maxsize=64)
def _references_sql(wanted: tuple[str, ...]) -> sa.TextClause:
    """Built once per set of branches (at most 64): a long TextClause is costly to make."""
    return sa.text(" UNION ALL ".join([_FIRST, *(_REFERENCE_BRANCHES[k] for k in wanted)]))


_INSERT = sa.text(
    "INSERT INTO visits (client_id, person_id, posting_id, building_id, address_id, kind, knows_people, "
    "knows_family, knows_address, knows_situation, note, at, received_crs, incident_ids, hazard_ids, "
    "recorded_by, geom) "
    "SELECT r.client_id, r.person_id, r.posting_id, r.building_id, r.address_id, r.kind, r.knows_people, "
    "r.knows_family, r.knows_address, r.knows_situation, r.note, r.at, r.crs, r.incident_ids, r.hazard_ids, "
    ":recorded_by, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326) "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(client_id text, person_id bigint, posting_id bigint, "
    "building_id bigint, address_id bigint, kind text, knows_people boolean, knows_family boolean, "
    "knows_address boolean, knows_situation boolean, note text, at timestamptz, crs text, "
    "incident_ids bigint[], hazard_ids bigint[], lon double precision, lat double precision) "
    "ON CONFLICT (person_id, client_id) DO NOTHING "
    "RETURNING id, person_id, client_id, building_id, grid_code, at"
)

_STORED = sa.text(
    "SELECT id, person_id, client_id, building_id, grid_code, at FROM visits "
    "WHERE (person_id, client_id) IN (SELECT * FROM unnest(CAST(:people AS bigint[]), CAST(:clients AS text[])))"
)


# The common request, one visit to a building by a whole-county or scoped key, in one statement
# (``record_one``): the building (inside the scope) and the person are read by the INSERT itself.
_INSERT_ONE = (
    "INSERT INTO visits (client_id, person_id, building_id, kind, knows_people, knows_family, knows_address, "
    "knows_situation, note, at, received_crs, recorded_by, geom) "
    "SELECT :client_id, p.id, b.id, :kind, :knows_people, :knows_family, :knows_address, :knows_situation, :note, "
    ":at, :crs, :recorded_by, coalesce(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326), "
    "b.geom) FROM buildings b, people p WHERE b.id = :building_id AND p.id = :person_id AND {scope} "
    "ON CONFLICT (person_id, client_id) DO NOTHING "
    "RETURNING id, person_id, client_id, building_id, grid_code, at"
)
_insert_one: dict[str, sa.TextClause] = {}


@dataclass
class VisitRow:
    """One checked visit, ready to store (``lon``/``lat`` in WGS-84)."""

    client_id: str
    person_id: int
    posting_id: int | None
    building_id: int | None
    address_id: int | None
    kind: str
    knows: dict[str, bool]
    lon: float | None
    lat: float | None
    crs: str
    at: dt.datetime
    note: str | None
    incident_ids: list[int]
    hazard_ids: list[int]


def rows_of(payload: object) -> tuple[list[object], bool]:
    """The rows of a body: one visit object, a list, or ``{"visits": [...]}``; and whether it was a batch."""
    if isinstance(payload, dict) and "visits" in payload:
        if set(payload) != {"visits"}:
            extra = sorted(set(payload) - {"visits"})[0]
            raise FieldworkInputError(extra, payload[extra], 'is not a field of a batch; send {"visits": [...]}')
        payload = payload["visits"]
        if not isinstance(payload, list):
            raise FieldworkInputError("visits", payload, "must be a list of visits")
    if isinstance(payload, list):
        if not payload:
            raise FieldworkInputError("visits", payload, "is empty")
        if len(payload) > MAX_BATCH:
            raise FieldworkInputError("visits", len(payload), f"holds {len(payload)} visits; at most {MAX_BATCH}")
        return payload, True
    return [payload], False


def parse_row(raw: object, where: str, caller: Principal, now: dt.datetime) -> VisitRow:
    """One visit's fields, checked; errors name ``where.field``."""
    row = fi.require_object(raw, where)
    fi.check_keys(row, _FIELDS, where)
    client_id = fi.text(row, "client_id", where, required=True, max_len=64)
    person_id = fi.integer(row, "person_id", where) or caller.person_id
    if person_id is None:
        raise FieldworkInputError(f"{where}.person_id", None, "is required (the key is not a person's)")
    building_id = fi.integer(row, "building_id", where)
    address_id = fi.integer(row, "address_id", where)
    if building_id is None and address_id is None:
        raise FieldworkInputError(f"{where}.building_id", None, "a building_id or an address_id is required")
    kind = row.get("kind", "routine")
    if kind not in VISIT_KINDS:
        raise FieldworkInputError(f"{where}.kind", kind, f"{kind!r} is not one of {', '.join(VISIT_KINDS)}")
    knows_raw = fi.require_object(row.get("knows", {}), f"{where}.knows")
    for key in knows_raw:
        if key not in FOUR_KNOWS:
            raise FieldworkInputError(f"{where}.knows.{key}", key, f"is not one of {', '.join(FOUR_KNOWS)}")
    knows = {k: fi.flag(knows_raw.get(k, False), f"{where}.knows.{k}") for k in FOUR_KNOWS}
    lon = lat = None
    if row.get("lon") is not None or row.get("lat") is not None:
        lon = fi.coordinate(row.get("lon"), f"{where}.lon", 180.0)
        lat = fi.coordinate(row.get("lat"), f"{where}.lat", 90.0)
    crs = fi.crs_of(row.get("crs"), f"{where}.crs")
    if lon is not None and lat is not None and crs != "wgs84":
        lon, lat = to_wgs84(lon, lat, crs)
    at = fi.instant(row.get("at") or now.isoformat(), f"{where}.at", now)
    return VisitRow(
        client_id=client_id or "",
        person_id=person_id,
        posting_id=fi.integer(row, "posting_id", where),
        building_id=building_id,
        address_id=address_id,
        kind=kind,
        knows=knows,
        lon=lon,
        lat=lat,
        crs=str(crs),
        at=at,
        note=fi.text(row, "note", where),
        incident_ids=fi.id_list(row, "incident_ids", where),
        hazard_ids=fi.id_list(row, "hazard_ids", where),
    )


def _resolve(conn: Conn, rows: list[VisitRow], wheres: list[str], caller: Principal) -> None:
    """Check every reference of every row in one query; fill building ids and default positions."""

    def ids(attr: str) -> list[int]:
        return sorted({v for r in rows if (v := getattr(r, attr)) is not None})

    wanted = {
        "buildings": ids("building_id"),
        "addresses": ids("address_id"),
        "people": sorted({r.person_id for r in rows}),
        "postings": ids("posting_id"),
        "incidents": sorted({i for r in rows for i in r.incident_ids}),
        "hazards": sorted({i for r in rows for i in r.hazard_ids}),
    }
    wanted = {k: v for k, v in wanted.items() if v}
    refs = conn.execute(_references_sql(tuple(wanted)), wanted)
    found: dict[tuple[str, int], Any] = {(r.kind, r.id): r for r in refs}
    scope = caller.scope

    def placed(kind: str, key: int, field: str) -> Any:
        ref = found.get((kind, key))
        if ref is None or not scope.contains_any(
            (ref.town_code, ref.village_code, ref.grid_code, ref.micro_grid_code, ref.station_code, ref.beat_code)
        ):
            raise FieldworkNotFound(field, f"no {kind} {key}")
        return ref

    for row, where in zip(rows, wheres, strict=True):
        if ("person", row.person_id) not in found:
            raise FieldworkNotFound(f"{where}.person_id", f"no person {row.person_id}")
        if row.person_id != caller.person_id and caller.person_id is not None and caller.role in ("viewer", "reporter"):
            raise FieldworkForbidden(f"{where}.person_id: a reporter key records only its own person's visits")
        if row.posting_id is not None:
            posting = found.get(("posting", row.posting_id))
            if posting is None:
                raise FieldworkNotFound(f"{where}.posting_id", f"no posting {row.posting_id}")
            if posting.person_id != row.person_id:
                raise FieldworkInputError(
                    f"{where}.posting_id", row.posting_id, f"is not a posting of person {row.person_id}"
                )
        target = None
        if row.address_id is not None:
            target = placed("address", row.address_id, f"{where}.address_id")
            if row.building_id is not None and target.building_id != row.building_id:
                raise FieldworkInputError(
                    f"{where}.address_id", row.address_id, f"is not an address of building {row.building_id}"
                )
            if target.building_id is None:
                raise FieldworkInputError(f"{where}.address_id", row.address_id, "has no building; send building_id")
            row.building_id = target.building_id
        if target is None:
            target = placed("building", row.building_id or 0, f"{where}.building_id")
        if row.lon is None:  # no position sent: the visited place's
            row.lon, row.lat = target.lon, target.lat
        for i, incident in enumerate(row.incident_ids):
            placed("incident", incident, f"{where}.incident_ids[{i}]")
        for i, hazard in enumerate(row.hazard_ids):
            placed("hazard", hazard, f"{where}.hazard_ids[{i}]")


def record(conn: Conn, payload: object, caller: Principal, now: dt.datetime | None = None) -> dict[str, Any]:
    """Store a visit or a batch (all or nothing); visits already stored under the same person and
    client id are answered as stored (``created`` false). Raises the fieldwork errors."""
    now = now or dt.datetime.now(dt.UTC)
    raws, batch = rows_of(payload)
    wheres = [f"visits[{i}]" if batch else "visit" for i in range(len(raws))]
    rows = [parse_row(raw, where, caller, now) for raw, where in zip(raws, wheres, strict=True)]
    seen: dict[tuple[int, str], int] = {}
    for i, row in enumerate(rows):
        first = seen.setdefault((row.person_id, row.client_id), i)
        if first != i and rows[first] != row:
            raise FieldworkInputError(
                f"{wheres[i]}.client_id", row.client_id, f"is also the client id of {wheres[first]}, with other values"
            )
    _resolve(conn, rows, wheres, caller)
    unique = [rows[i] for i in sorted(set(seen.values()))]
    data = [
        {
            "client_id": r.client_id,
            "person_id": r.person_id,
            "posting_id": r.posting_id,
            "building_id": r.building_id,
            "address_id": r.address_id,
            "kind": r.kind,
            **{f"knows_{k}": v for k, v in r.knows.items()},
            "note": r.note,
            "at": r.at.isoformat(),
            "crs": r.crs,
            "incident_ids": r.incident_ids,
            "hazard_ids": r.hazard_ids,
            "lon": r.lon,
            "lat": r.lat,
        }
        for r in unique
    ]
    created = {
        (r.person_id, r.client_id): r
        for r in conn.execute(_INSERT, {"rows": orjson.dumps(data).decode(), "recorded_by": caller.name})
    }
    stored = dict(created)
    missing = [key for key in seen if key not in created]
    if missing:
        params = {"people": [k[0] for k in missing], "clients": [k[1] for k in missing]}
        stored.update({(r.person_id, r.client_id): r for r in conn.execute(_STORED, params)})
    out = []
    for i, row in enumerate(rows):
        key = (row.person_id, row.client_id)
        s = stored[key]
        out.append(
            {
                "id": s.id,
                "client_id": s.client_id,
                "person_id": s.person_id,
                "building_id": s.building_id,
                "grid_code": s.grid_code,
                "at": s.at,
                "created": key in created and seen[key] == i,
            }
        )
    if not batch:
        return out[0]
    made = sum(1 for v in out if v["created"])
    return {"created": made, "replayed": len(out) - made, "visits": out}


def record_one(conn: Conn, payload: object, caller: Principal, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """``record`` of the common request in one round trip: a single visit to a building (no
    address, posting, incident or hazard) that is stored new. None when anything else holds: a bad
    field, a batch, a missing building or person or one outside the scope, another person's visit
    by a reporter key, a resend (its client id stored). Nothing is stored then, and ``record``
    gives the answer (the error, or the stored visit)."""
    if not isinstance(payload, dict) or "visits" in payload:
        return None
    try:
        row = parse_row(payload, "visit", caller, now or dt.datetime.now(dt.UTC))
    except FieldworkInputError:
        return None
    if row.building_id is None or row.address_id is not None or row.posting_id is not None:
        return None
    if row.incident_ids or row.hazard_ids:
        return None
    if row.person_id != caller.person_id and caller.person_id is not None and caller.role in ("viewer", "reporter"):
        return None
    # The scope as SQL admits a subset of what ``Scope.contains_any`` admits (equality on a layer's
    # column implies the prefix test): a building it leaves out is decided by ``record``.
    where, params = caller.scope.where("b")
    sql = _insert_one.get(where)
    if sql is None:
        sql = _insert_one.setdefault(where, sa.text(_INSERT_ONE.format(scope=where)))
    stored = conn.execute(
        sql,
        {**params, "client_id": row.client_id, "person_id": row.person_id, "building_id": row.building_id,
         "kind": row.kind, **{f"knows_{k}": v for k, v in row.knows.items()}, "note": row.note, "at": row.at,
         "crs": row.crs, "recorded_by": caller.name, "lon": row.lon, "lat": row.lat},
    ).one_or_none()  # fmt: skip
    if stored is None:
        return None
    return {
        "id": stored.id,
        "client_id": stored.client_id,
        "person_id": stored.person_id,
        "building_id": stored.building_id,
        "grid_code": stored.grid_code,
        "at": stored.at,
        "created": True,
    }
