"""The owner-kind registry (gis.files.owners): a kind plugs in with one OwnerKind naming its table,
and ``locate`` checks existence and scope through it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.files import owners
from gis.files.owners import OwnerKind, OwnerNotFound, locate
from gis.people.scope import Scope


def test_a_new_kind_plugs_in_with_one_line(connection: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    connection.execute(
        sa.text(
            "CREATE TEMP TABLE probe_hazards (id bigint PRIMARY KEY, town_code text, grid_code text, "
            "geom geometry(Point, 4326))"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO probe_hazards VALUES "
            "(1, '330421001', '330421001001001', ST_SetSRID(ST_MakePoint(120.9, 30.8), 4326)), "
            "(2, '330421002', '330421002001001', NULL)"
        )
    )
    kind = OwnerKind("hazard", "hazards", "probe_hazards t", layers=("town", "grid"))
    monkeypatch.setitem(owners.OWNERS, "hazard", kind)
    assert locate(connection, "hazard", 1, Scope()) == (120.9, 30.8)
    assert locate(connection, "hazard", 1, Scope.parse("330421001")) == (120.9, 30.8)
    assert locate(connection, "hazard", 2, Scope.parse("330421002")) is None  # in scope, no position
    with pytest.raises(OwnerNotFound, match="no hazard with id 1"):
        locate(connection, "hazard", 1, Scope.parse("330421002"))
    with pytest.raises(OwnerNotFound):
        locate(connection, "hazard", 3, Scope())


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="gis.core.vocab"):
        OwnerKind("parcel", "parcels", "parcels t")
    with pytest.raises(ValueError, match="not served"):
        owners.owner_kind("parcel")


def test_attach_bytes_stores_in_memory_content(
    connection: Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gis.files.ingest import Uploader, attach_bytes
    from gis.files.storage import DiskStorage
    from tests.gis.attachment_samples import jpeg

    connection.execute(
        sa.text("CREATE TEMP TABLE probe_visits (id bigint PRIMARY KEY, town_code text, geom geometry(Point, 4326))")
    )
    connection.execute(sa.text("INSERT INTO probe_visits VALUES (7, '330421001', NULL)"))
    monkeypatch.setitem(owners.OWNERS, "visit", OwnerKind("visit", "visits", "probe_visits t", layers=("town",)))
    store = DiskStorage(tmp_path / "store")
    data = jpeg(120.905, 30.832)
    row, created = attach_bytes(
        connection, store, "visit", 7, data, Uploader("grid worker"), claimed=(120.905, 30.8325), work_dir=tmp_path
    )
    assert created and row["owner_kind"] == "visit" and row["size_bytes"] == len(data)
    assert row["distance_m"] == pytest.approx(55.4, abs=1.0) and not row["flagged_far"]
    assert store.exists(row["sha256"]) and store.exists(row["public_key"]) and store.exists(row["thumbnail_key"])
    again, created = attach_bytes(connection, store, "visit", 7, data, Uploader("grid worker"), work_dir=tmp_path)
    assert not created and again["id"] == row["id"]
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []  # no temporary file left
