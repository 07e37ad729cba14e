"""The owner-kind registry (gis.files.owners): a kind plugs in with one OwnerKind naming its table,
and ``locate`` checks existence and scope through it."""

from __future__ import annotations

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
