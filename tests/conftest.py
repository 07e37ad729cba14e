"""Test fixtures: a real PostGIS database, and each test inside a transaction that is rolled back.

The database is ``<name>_test`` (one per xdist worker) on the configured server, or on the local
cluster that ``gridmap db up`` runs; ``GRIDMAP_TEST_DATABASE_URL`` overrides it. It is dropped and
migrated afresh once per session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from boundaries.generations import publish_layers
from gis import db
from gis.settings import Settings, get_settings


def _test_url() -> str:
    explicit = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if explicit:
        return Settings(database_url=explicit).database_url or explicit
    settings = get_settings()
    base = db.database_url(settings)
    if settings.uses_local_cluster:
        from gis import cluster

        cluster.start(settings)
    url = make_url(base)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{url.database}_test" + (f"_{worker}" if worker else "")
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> str:
    url_text = _test_url()
    url = make_url(url_text)
    admin = db.make_engine(url.set(database="postgres"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()
    db.ensure_database(url_text)
    db.migrate(url_text)
    return url_text


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = db.make_engine(database_url, pool_size=5, max_overflow=5)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose outer transaction is rolled back after the test: nothing persists."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    # Session commits become savepoint releases inside the test's transaction.
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as sess:
        yield sess


@pytest.fixture
def app(engine: Engine, session: Session):  # type: ignore[no-untyped-def]
    from api.app import create_app
    from api.deps import get_session

    application = create_app(Settings(), engine=engine)

    def _session() -> Iterator[Session]:
        yield session
        session.flush()

    application.dependency_overrides[get_session] = _session
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


# --- a small county with exact, hand-checkable edges -------------------------------------------

X0, X1, Y0, Y1 = 120.90, 120.94, 30.83, 30.85  # ~3.8 km x 2.2 km in Jiashan
XM, YM = 120.92, 30.84


@dataclass(frozen=True)
class MiniCounty:
    generation: int
    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    micro_grids: gpd.GeoDataFrame
    beats: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame


def _gdf(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def build_mini_county() -> dict[str, gpd.GeoDataFrame]:
    """2 towns (split at XM) x 2 villages (split at YM) x 2 grids x 2 micro-grids; 3 beats in 2 stations.

    Codes grow west to east and south to north, so on a shared edge the smaller code is the
    western or southern unit.
    """
    towns, villages, grids, micros = [], [], [], []
    for t, (tx0, tx1) in enumerate([(X0, XM), (XM, X1)], start=1):
        tcode = f"33042100{t}"
        towns.append({"code": tcode, "name": f"测试镇{t}", "parent_code": "330421", "geometry": box(tx0, Y0, tx1, Y1)})
        for v, (vy0, vy1) in enumerate([(Y0, YM), (YM, Y1)], start=1):
            vcode = f"{tcode}{v:03d}"
            villages.append(
                {"code": vcode, "name": f"测试镇{t}村{v}", "parent_code": tcode, "geometry": box(tx0, vy0, tx1, vy1)}
            )
            gx = (tx0 + tx1) / 2
            for g, (gx0, gx1) in enumerate([(tx0, gx), (gx, tx1)], start=1):
                gcode = f"{vcode}{g:03d}"
                grids.append(
                    {
                        "code": gcode,
                        "name": f"{vcode}第{g}网格",
                        "parent_code": vcode,
                        "households": 400,
                        "geometry": box(gx0, vy0, gx1, vy1),
                    }
                )
                my = (vy0 + vy1) / 2
                for m, (my0, my1) in enumerate([(vy0, my), (my, vy1)], start=1):
                    micros.append(
                        {
                            "code": f"{gcode}{m:02d}",
                            "name": f"{gcode}-{m}微网格",
                            "parent_code": gcode,
                            "households": 65,
                            "geometry": box(gx0, my0, gx1, my1),
                        }
                    )
    cuts = [X0, 120.913, 120.927, X1]
    beats = [
        {
            "code": f"330421P0{1 if b < 2 else 2}{b + 1:02d}",
            "name": f"警格{b + 1}",
            "parent_code": f"330421P0{1 if b < 2 else 2}",
            "geometry": box(cuts[b], Y0, cuts[b + 1], Y1),
        }
        for b in range(3)
    ]
    stations = [
        {"code": "330421P01", "name": "测试一派出所", "parent_code": "330421", "geometry": box(X0, Y0, cuts[2], Y1)},
        {"code": "330421P02", "name": "测试二派出所", "parent_code": "330421", "geometry": box(cuts[2], Y0, X1, Y1)},
    ]
    county = [{"code": "330421", "name": "嘉善县(测试)", "parent_code": "330400", "geometry": box(X0, Y0, X1, Y1)}]
    return {
        "county": _gdf(county),
        "town": _gdf(towns),
        "village": _gdf(villages),
        "grid": _gdf(grids),
        "micro_grid": _gdf(micros),
        "station": _gdf(stations),
        "beat": _gdf(beats),
    }


@pytest.fixture
def mini_county(connection: Connection) -> MiniCounty:
    layers = build_mini_county()
    import datetime as dt

    gen = publish_layers(
        connection, layers, note="mini test county", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    return MiniCounty(
        gen, layers["town"], layers["village"], layers["grid"], layers["micro_grid"], layers["beat"], layers["station"]
    )


@pytest.fixture
def make_key(connection: Connection):  # type: ignore[no-untyped-def]
    """Create an API key of a role inside the test transaction; returns the headers to send."""
    from gis.keys import create_key

    def _make(role: str = "admin", name: str | None = None) -> dict[str, str]:
        return {"X-API-Key": create_key(connection, role, name or f"test-{role}")}

    return _make


@pytest.fixture
def admin_headers(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_key("admin")
