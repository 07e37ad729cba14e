"""Time values on every endpoint that takes one: never a 5xx, bad values a 422 naming the
parameter, and the same naive time the same instant everywhere (gis.core.timeparse's rule).

Every endpoint taking a time is listed below; ``test_every_time_parameter_is_listed`` checks the
list against the OpenAPI document, so a new time parameter cannot escape these tests.
"""

from __future__ import annotations

import datetime as dt
import math
import string
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core.timeparse import TimeValueError, parse_time
from gis.incidents.intake import CLOCK_SKEW, EARLIEST

SHANGHAI = ZoneInfo("Asia/Shanghai")
GRID = "330421001001001"
BEAT = "330421P0101"
POINT = (120.905, 30.835)  # in GRID and BEAT; every test incident is here, so one tile holds them all
Z = 15


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


TILE = "{}/{}/{}".format(Z, *_tile(*POINT, Z))


# --- the endpoints -----------------------------------------------------------------------------


def _total(r: Any) -> int:
    return int(r.json()["total"])


def _features(r: Any) -> int:
    return len(r.json()["features"])


def _tile_points(r: Any) -> int:
    return len(mapbox_vector_tile.decode(r.content).get("incidents", {}).get("features", []))


def _grid_incidents(r: Any) -> int:
    return sum(int(g["incidents"]) for g in r.json().values())


def _kpi_reported(r: Any) -> int:
    return sum(int(f["properties"]["kpis"]["reported"] or 0) for f in r.json()["features"])


@dataclass(frozen=True)
class WindowEndpoint:
    """An endpoint taking a ``start``/``end`` window; ``aliases`` are its old names (start, end)."""

    path: str
    aliases: tuple[tuple[str, str], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    count: Callable[[Any], int] | None = None  # how many test incidents (audit entries) it selected
    # Windows the endpoint refuses beyond the rule (the map pages' three-year limit, a custom
    # window whose missing end is now): 422 allowed for valid values there.
    may_refuse_valid: bool = False


# Every endpoint that selects incidents reads its window through the one filter dependency
# (api.params.incident_filter), so all take both old names of the window.
FILTER_ALIASES = (("reported_from", "reported_to"), ("from", "to"))
WINDOWS = {
    "incidents": WindowEndpoint("/incidents", FILTER_ALIASES, count=_total),
    # A missing start is end - 30 days, a missing end now: a start after now is an empty window.
    "stats": WindowEndpoint(
        "/stats", FILTER_ALIASES, count=lambda r: int(r.json()["totals"]["total"]), may_refuse_valid=True
    ),
    "audit": WindowEndpoint("/audit", (("since", "until"),), {"action": "timetest."}, count=_total),
    "export": WindowEndpoint("/export/incidents", FILTER_ALIASES, extra={"format": "geojson"}, count=_features),
    "tiles": WindowEndpoint(f"/tiles/incidents/{TILE}.mvt", FILTER_ALIASES, count=_tile_points),
    "heat-data": WindowEndpoint("/maps/data/heat.json", FILTER_ALIASES, count=_total, may_refuse_valid=True),
    "grid-stats": WindowEndpoint(
        "/maps/data/grids/stats.json", FILTER_ALIASES, count=_grid_incidents, may_refuse_valid=True
    ),
    # The KPI choropleth's data: the KPIs of the incidents reported in the window, per grid.
    "grid-kpis": WindowEndpoint(
        "/maps/data/grids/kpis.geojson", FILTER_ALIASES, count=_kpi_reported, may_refuse_valid=True
    ),
    # The live and flagged layers take the filter too; their own time rule (received in the last
    # hours; the current backlog whatever the report time) replaces the window.
    "live-data": WindowEndpoint("/maps/data/incidents/live.geojson", FILTER_ALIASES),
    "flagged-data": WindowEndpoint("/maps/data/incidents/overdue.geojson", FILTER_ALIASES),
    "command-center": WindowEndpoint("/maps/command-center", FILTER_ALIASES, may_refuse_valid=True),
    "heatmap-time": WindowEndpoint("/maps/heatmap/time", FILTER_ALIASES, may_refuse_valid=True),
    "grid-page": WindowEndpoint(f"/maps/grids/{GRID}", FILTER_ALIASES, may_refuse_valid=True),
    "beat-page": WindowEndpoint(f"/maps/beats/{BEAT}", FILTER_ALIASES, may_refuse_valid=True),
    # The analyses take the filter but have their own window (a period by `date`, `days` before
    # `end`): a start/end they cannot use is a 422 naming it, never a 5xx.
    "hotspots": WindowEndpoint("/analysis/hotspots", FILTER_ALIASES, may_refuse_valid=True),
    "emerging": WindowEndpoint("/analysis/emerging", FILTER_ALIASES, may_refuse_valid=True),
    "repeats": WindowEndpoint("/analysis/repeats", FILTER_ALIASES, may_refuse_valid=True),
    # start/end together are the KPIs' period (else `period` around `date`).
    "kpis": WindowEndpoint("/kpis", FILTER_ALIASES),
    "hazards": WindowEndpoint("/hazards"),
    # A missing start is end - 365 days, a missing end now: a start after now is an empty window.
    "satisfaction": WindowEndpoint("/satisfaction", may_refuse_valid=True),
}
# Endpoints taking ``as_of`` (the boundaries in force then), and how to read the generation used.
AS_OF = {
    "lookup": ("/lookup", {"lon": str(POINT[0]), "lat": str(POINT[1])}, lambda r: r.json()["generation"]),
    "grid": (f"/grids/{GRID}", {}, lambda r: r.json()["generation"]),
    "beat": (f"/beats/{BEAT}", {}, lambda r: r.json()["generation"]),
    "export": ("/export/grids", {"format": "geojson"}, lambda r: r.json()["features"][0]["properties"]["generation"]),
    "tiles": (f"/tiles/grids/{TILE}.mvt", {}, None),
}
# Times in bodies: POST /incidents reported_at (and the /lookup/batch as_of, a query parameter).
OTHER_TIME_PARAMETERS = {("/lookup/batch", "as_of"), ("/incidents", "reported_at")}
# OGC API Features' ``datetime`` is the standard's own parameter (an instant or an interval).
OGC_ITEMS = "/ogc/collections/ogc.incidents/items"


def test_every_time_parameter_is_listed(client: TestClient) -> None:
    """Every query parameter with a time name in the OpenAPI document is one the tests below try."""
    spec = client.get("/openapi.json").json()
    time_names = {"start", "end", "as_of", "from", "to", "since", "until", "reported_from", "reported_to"}
    found = set()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] in time_names:
                    found.add((path, parameter["name"]))
    covered = {(e.path.replace(TILE, "{z}/{x}/{y}"), n) for e in WINDOWS.values() for n in ("start", "end")}
    covered |= {(e.path.replace(TILE, "{z}/{x}/{y}"), n) for e in WINDOWS.values() for a in e.aliases for n in a}
    covered |= {(p.replace(TILE, "{z}/{x}/{y}"), "as_of") for p, _, _ in AS_OF.values()}
    covered |= OTHER_TIME_PARAMETERS
    normalise = {
        f"/maps/grids/{GRID}": "/maps/grids/{code}",
        f"/maps/beats/{BEAT}": "/maps/beats/{code}",
        f"/grids/{GRID}": "/grids/{code}",
        f"/beats/{BEAT}": "/beats/{code}",
        "/export/incidents": "/export/{layer}",
        "/export/grids": "/export/{layer}",
        "/tiles/incidents/{z}/{x}/{y}.mvt": "/tiles/{layer}/{z}/{x}/{y}.mvt",
        "/tiles/grids/{z}/{x}/{y}.mvt": "/tiles/{layer}/{z}/{x}/{y}.mvt",
        "/maps/data/incidents/overdue.geojson": "/maps/data/incidents/{flag}.geojson",
    }
    covered = {(normalise.get(p, p), n) for p, n in covered}
    assert found - covered == set(), "time parameters the tests do not try"
    # The old names are documented as deprecated aliases, the canonical ones carry the rule.
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if (path, parameter["name"]) in found and parameter["name"] in {"from", "since", "reported_from"}:
                    assert parameter.get("deprecated") is True and "alias of `start`" in parameter["description"]
                if (path, parameter["name"]) in found and parameter["name"] == "start":
                    assert "county time" in parameter["description"]


# --- the data ----------------------------------------------------------------------------------

# Incidents (and audit entries) at these county wall-clock times: around midnights, in the
# 1986-1991 summer time (+09:00), and at the edges of the allowed years.
MOMENTS = [
    dt.datetime(2024, 5, 1, 0, 0, 0),
    dt.datetime(2024, 5, 1, 8, 0, 0),
    dt.datetime(2024, 5, 1, 23, 59, 59),
    dt.datetime(2024, 5, 2, 0, 0, 0),
    dt.datetime(2024, 5, 2, 0, 30, 0),
    dt.datetime(1988, 7, 1, 12, 0, 0),
    dt.datetime(1988, 7, 2, 0, 0, 0),
]
INSTANTS = [m.replace(tzinfo=SHANGHAI) for m in MOMENTS]
# The second generation of boundaries, published at this instant (county time 15:00).
PUBLISHED = dt.datetime(2024, 3, 1, 15, 0, tzinfo=SHANGHAI)


@dataclass
class World:
    client: TestClient
    headers: dict[str, str]
    generations: tuple[int, int]


@pytest.fixture
def world(connection: Connection, mini_county: Any, make_key: Any, app: Any) -> Iterator[World]:
    for at in INSTANTS:
        connection.execute(
            sa.text(
                "INSERT INTO incidents (category, source, reported_at, status, geom) "
                "VALUES ('fire', '110', :at, 'closed', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {"at": at, "lon": POINT[0], "lat": POINT[1]},
        )
        connection.execute(
            sa.text("INSERT INTO audit_log (at, actor, action, target) VALUES (:at, 'tests', 'timetest.x', 'x')"),
            {"at": at},
        )
    second = publish_layers(
        connection, build_mini_county(), note="the same again", author="tests", published_at=PUBLISHED
    )
    headers = make_key("admin")
    with TestClient(app) as client:  # started after the data, so the lookup service sees both generations
        yield World(client, headers, (mini_county.generation, second))


# --- values ------------------------------------------------------------------------------------

OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


def _offset(minutes: int, colon: bool = True) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


@st.composite
def _spelled(draw: st.DrawFn, moment: dt.datetime) -> str:
    """``moment`` (aware) in one of the ways a client may write it."""
    local = moment.astimezone(SHANGHAI)
    how = draw(st.sampled_from(["naive", "naive-space", "county-offset", "utc-z", "any-offset"]))
    if how == "naive":
        return local.replace(tzinfo=None).isoformat()
    if how == "naive-space":
        return local.replace(tzinfo=None).isoformat(sep=" ")
    if how == "county-offset":
        return local.isoformat()
    if how == "utc-z":
        return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
    minutes = draw(OFFSETS)
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    return moment.astimezone(zone).replace(tzinfo=None).isoformat() + _offset(minutes, draw(st.booleans()))


VALID_TIMES = st.one_of(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)).map(dt.date.isoformat),
    st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 12, 30)).map(
        lambda d: d.isoformat(timespec="seconds")
    ),
    st.builds(
        lambda d, m: d.isoformat(timespec="minutes") + ("Z" if m == 0 else _offset(m)),
        st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 12, 30)),
        OFFSETS,
    ),
)
BAD_TIMES = st.one_of(
    st.sampled_from(
        [
            "yesterday",
            "now",
            "2024-13-01",
            "2024-02-30",
            "2024-05-01T24:00",
            "2024-05-01T23:59:60",
            "2024-05-01T08:00+24:00",
            "9999-12-31T23:59:59",
            "9999-12-31",
            "0001-01-01",
            "0000-01-01T00:00Z",
            "1899-12-31",
            "2201-01-01",
            "99999-01-01",
            "-2024-01-01",
            "2024-05-01\x00",
            "２０２４-05-01",
            "2024-05-01T08:00:00+08:00" * 3,
            "1e10",
            "NaN",
            "2024-05-01/2024-05-02",
        ]
    ),
    st.integers(min_value=0, max_value=9999).map(lambda y: f"{y:04d}-06-15T12:00:00Z"),
    st.text(alphabet=string.digits + "-:T+Z .", max_size=30),
    st.text(max_size=45),
)
TIMES = st.one_of(VALID_TIMES, BAD_TIMES, st.just(""))


def _verdict(text: str | None, bound: str, name: str) -> dt.datetime | None | TimeValueError:
    """What the rule makes of ``text``: an instant, None (absent or blank), or the error."""
    if text is None or not text.strip():
        return None
    try:
        return parse_time(text, bound=bound, field=name)  # type: ignore[arg-type]
    except TimeValueError as exc:
        return exc


def _locs(response: Any) -> list[str]:
    detail = response.json().get("detail")
    if isinstance(detail, str):
        return [detail]
    return [str(item.get("loc", [None])[-1]) for item in detail]


def _no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]


RELAXED = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- never a 5xx; bad values a 422 naming the parameter ----------------------------------------


@pytest.mark.parametrize("name", WINDOWS)
@RELAXED
@given(start=st.none() | TIMES, end=st.none() | TIMES, alias=st.integers(0, 1))
def test_window_values_never_fail_the_server(
    world: World, name: str, start: str | None, end: str | None, alias: int
) -> None:
    endpoint = WINDOWS[name]
    names = ("start", "end") if alias == 0 or not endpoint.aliases else endpoint.aliases[0]
    params = dict(endpoint.extra)
    for key, value in zip(names, (start, end), strict=True):
        if value is not None:
            params[key] = value
    response = world.client.get(endpoint.path, params=params, headers=world.headers)
    _no_server_error(response)
    s, e = _verdict(start, "start", names[0]), _verdict(end, "end", names[1])
    bad = [n for n, v in zip(names, (s, e), strict=True) if isinstance(v, TimeValueError)]
    if bad:
        assert response.status_code == 422, (params, response.text[:300])
        assert set(bad) <= set(_locs(response)) or all(b in _locs(response)[0] for b in bad), response.text
    elif isinstance(s, dt.datetime) and isinstance(e, dt.datetime) and s >= e:
        assert response.status_code == 422, (params, response.text[:300])
        message = response.text
        assert names[0] in message and names[1] in message  # a window error names both ends
    elif endpoint.may_refuse_valid and response.status_code == 422:
        # The map pages' own limits name the window by its old or new names.
        window_names = {"start", "end", *(n for pair in endpoint.aliases for n in pair)}
        assert any(n in response.text for n in window_names), response.text[:300]
    else:
        assert response.status_code == 200, (params, response.text[:300])


@pytest.mark.parametrize("name", AS_OF)
@RELAXED
@given(value=TIMES)
def test_as_of_values_never_fail_the_server(world: World, name: str, value: str) -> None:
    path, extra, _ = AS_OF[name]
    response = world.client.get(path, params={**extra, "as_of": value}, headers=world.headers)
    _no_server_error(response)
    verdict = _verdict(value, "instant", "as_of")
    if isinstance(verdict, TimeValueError):
        assert response.status_code == 422 and "as_of" in _locs(response), response.text[:300]
    else:
        assert response.status_code == 200, (value, response.text[:300])


@RELAXED
@given(value=TIMES)
def test_batch_as_of_never_fails_the_server(world: World, value: str) -> None:
    body = [{"lon": POINT[0], "lat": POINT[1]}]
    response = world.client.post("/lookup/batch", params={"as_of": value}, json=body, headers=world.headers)
    _no_server_error(response)
    verdict = _verdict(value, "instant", "as_of")
    expected = 422 if isinstance(verdict, TimeValueError) else 200
    assert response.status_code == expected, (value, response.text[:300])


@RELAXED
@given(value=TIMES | st.integers() | st.floats(allow_nan=True) | st.booleans())
def test_reported_at_never_fails_the_server(world: World, value: Any) -> None:
    body = {"lon": POINT[0], "lat": POINT[1], "category": "fire", "source": "hotline_110", "reported_at": value}
    sent = dt.datetime.now(dt.UTC)
    response = world.client.post("/incidents", json=body, headers=world.headers)
    answered = dt.datetime.now(dt.UTC)
    _no_server_error(response)
    verdict = _verdict(value, "instant", "reported_at") if isinstance(value, str) else None
    if not isinstance(value, str) or isinstance(verdict, TimeValueError):
        if value == "" or value is None:
            return
        assert response.status_code == 422 and "reported_at" in _locs(response), response.text[:300]
    elif isinstance(verdict, dt.datetime):
        # The same bounds as intake: EARLIEST is an instant (1990-01-01 UTC), not a county-time year.
        too_early, too_late = verdict < EARLIEST, verdict > answered + CLOCK_SKEW
        if not too_early and sent + CLOCK_SKEW < verdict <= answered + CLOCK_SKEW:
            # "Now" moved while the request ran (a loaded machine): the server's now and ours differ.
            assert response.status_code in (201, 422), (value, response.text[:300])
            return
        assert response.status_code == (422 if too_early or too_late else 201), (value, response.text[:300])


@RELAXED
@given(value=TIMES, second=st.none() | TIMES | st.just(".."))
def test_ogc_datetime_never_fails_the_server(world: World, value: str, second: str | None) -> None:
    interval = value if second is None else f"{value}/{second}"
    response = world.client.get(OGC_ITEMS, params={"datetime": interval, "limit": 1}, headers=world.headers)
    _no_server_error(response)
    parts = interval.split("/")
    if len(parts) == 1:
        verdicts = [_verdict(value, "start", "datetime")]
        ok = not isinstance(verdicts[0], TimeValueError)
    else:
        open_ = [p.strip() in ("", "..") for p in parts]
        verdicts = [
            None if o else _verdict(p, b, "datetime") for p, o, b in zip(parts, open_, ("start", "end"), strict=False)
        ]
        ok = len(parts) == 2 and not all(open_) and not any(isinstance(v, TimeValueError) for v in verdicts)
        if ok and all(isinstance(v, dt.datetime) for v in verdicts):
            ok = verdicts[0] < verdicts[1]  # type: ignore[operator]
    if ok:
        assert response.status_code == 200, (interval, response.text[:300])
    else:
        assert response.status_code == 422 and "datetime" in _locs(response), (interval, response.text[:300])


@pytest.mark.parametrize(
    ("given_value", "sent_on"),
    [
        ("2024-05-01T08:00", "2024-05-01T00:00:00Z"),  # naive: county time
        ("2024-05-01T08:00:00+08:00", "2024-05-01T00:00:00Z"),
        ("2024-05-01", "2024-04-30T16:00:00Z/2024-05-01T16:00:00Z"),  # a date alone: that whole day
        ("../2024-05-01", "../2024-05-01T16:00:00Z"),
    ],
)
def test_ogc_datetime_follows_the_rule(world: World, given_value: str, sent_on: str) -> None:
    """What tipg filters on is in its self link: the value as the rule reads it."""
    response = world.client.get(OGC_ITEMS, params={"datetime": given_value}, headers=world.headers)
    assert response.status_code == 200, response.text[:300]
    self_link = next(link["href"] for link in response.json()["links"] if link["rel"] == "self")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(self_link).query)["datetime"] == [sent_on]


# --- the same naive time is the same instant everywhere -----------------------------------------


def _expected(start: dt.datetime, end: dt.datetime) -> int:
    return sum(start <= i < end for i in INSTANTS)


COUNTED = [n for n, e in WINDOWS.items() if e.count is not None]


@RELAXED
@given(data=st.data())
def test_a_window_means_the_same_instants_on_every_endpoint(world: World, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(INSTANTS))
    start = base + data.draw(st.sampled_from([dt.timedelta(seconds=s) for s in (-1, 0, 1, 3600)]))
    end = start + data.draw(st.sampled_from([dt.timedelta(seconds=1), dt.timedelta(minutes=30), dt.timedelta(days=1)]))
    start_text, end_text = data.draw(_spelled(start)), data.draw(_spelled(end))
    expected = _expected(start, end)
    for name in COUNTED:
        endpoint = WINDOWS[name]
        for names in (("start", "end"), *endpoint.aliases):
            params = {**endpoint.extra, names[0]: start_text, names[1]: end_text}
            response = world.client.get(endpoint.path, params=params, headers=world.headers)
            assert response.status_code == 200, (name, params, response.text[:300])
            assert endpoint.count(response) == expected, (name, params)  # type: ignore[misc]


@RELAXED
@given(day=st.sampled_from(sorted({m.date() + dt.timedelta(days=d) for m in MOMENTS for d in (-1, 0, 1)})))
def test_a_bare_date_is_its_whole_day_on_every_endpoint(world: World, day: dt.date) -> None:
    """start=D&end=D is the whole day D in county time: [D 00:00, D+1 00:00)."""
    expected = _expected(
        dt.datetime.combine(day, dt.time(), SHANGHAI),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SHANGHAI),
    )
    for name in COUNTED:
        endpoint = WINDOWS[name]
        params = {**endpoint.extra, "start": day.isoformat(), "end": day.isoformat()}
        response = world.client.get(endpoint.path, params=params, headers=world.headers)
        assert response.status_code == 200, (name, params, response.text[:300])
        assert endpoint.count(response) == expected, (name, params)  # type: ignore[misc]


@RELAXED
@given(data=st.data())
def test_as_of_means_the_same_instant_on_every_endpoint(world: World, data: st.DataObject) -> None:
    first, second = world.generations
    at = PUBLISHED + data.draw(st.sampled_from([dt.timedelta(seconds=s) for s in (-3600, -1, 0, 1, 86400)]))
    text = data.draw(_spelled(at))
    expected = second if at >= PUBLISHED else first
    for name, (path, extra, generation) in AS_OF.items():
        if generation is None:
            continue
        response = world.client.get(path, params={**extra, "as_of": text}, headers=world.headers)
        assert response.status_code == 200, (name, text, response.text[:300])
        assert generation(response) == expected, (name, text)
    batch = world.client.post(
        "/lookup/batch", params={"as_of": text}, json=[{"lon": POINT[0], "lat": POINT[1]}], headers=world.headers
    )
    assert batch.json()["results"][0]["result"]["generation"] == expected


@pytest.mark.parametrize(
    ("as_of", "which"),
    [("2024-03-01", 1), ("2024-02-29", 0), ("2024-03-01T14:59:59", 0), ("2024-03-01T07:00:00Z", 1)],
)
def test_as_of_a_date_is_the_end_of_that_day(world: World, as_of: str, which: int) -> None:
    for name, (path, extra, generation) in AS_OF.items():
        if generation is None:
            continue
        response = world.client.get(path, params={**extra, "as_of": as_of}, headers=world.headers)
        assert generation(response) == world.generations[which], (name, as_of)


def test_old_and_new_names_together_must_agree(world: World) -> None:
    same = world.client.get(
        "/audit", params={"start": "2024-05-01", "since": "2024-05-01", "action": "timetest."}, headers=world.headers
    )
    assert same.status_code == 200
    assert same.json()["total"] == _expected(dt.datetime(2024, 5, 1, tzinfo=SHANGHAI), dt.datetime.now(dt.UTC)) == 5
    clash = world.client.get("/audit", params={"start": "2024-05-01", "since": "2024-05-02"}, headers=world.headers)
    assert clash.status_code == 422 and {"start", "since"} <= set(_locs(clash))


# --- the commands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option", "also"),
    [
        (["export", "incidents", "--out", "x.geojson", "--start", "yesterday"], "--start", None),
        (["export", "grids", "--out", "x.geojson", "--as-of", "2024-02-30"], "--as-of", None),
        (
            ["export", "incidents", "--out", "x.geojson", "--start", "2024-05-02", "--end", "2024-05-01"],
            "--end",
            "--start",
        ),
        (
            ["export", "incidents", "--out", "x.geojson", "--start", "2024-05-01", "--end", "2024-04-30T16:00Z"],
            "--end",
            "--start",
        ),
        (["incidents", "escalate", "--now", "9999-01-01"], "--now", None),
    ],
)
def test_commands_read_times_by_the_same_rule(tmp_path: Any, args: list[str], option: str, also: str | None) -> None:
    """Bad times fail before the command touches the database, naming the option (and the other end)."""
    from typer.testing import CliRunner

    from api.cli import app as cli

    result = CliRunner().invoke(cli, [a.replace("x.geojson", str(tmp_path / "x.geojson")) for a in args])
    assert isinstance(result.exception, TimeValueError), result.output
    assert result.exception.field == option and option in str(result.exception)
    if also:
        assert also in str(result.exception)
