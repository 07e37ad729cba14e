"""Attachments over HTTP (issue 17, item 5): upload by raw body or multipart, type by content,
limits, EXIF compared with the claim, EXIF stripped below dispatcher, thumbnails made once, the
same content stored once, and an owner outside the key's scope absent on every path."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.engine import Connection, Engine

from gis.core.settings import Settings
from gis.files import media
from tests.gis.attachment_samples import MAKER, heic, jpeg, pdf, png

POINT_A = (120.905, 30.832)  # town 330421001 of the mini county
POINT_B = (120.935, 30.845)  # town 330421002
MAX_BYTES = 200_000


@pytest.fixture
def files(tmp_path: Path, engine: Engine, sessions_in_transaction: Any) -> Iterator[TestClient]:
    from api.app import create_app

    settings = Settings(freeze_heap=False, attachments_dir=tmp_path / "store", attachment_max_mb=MAX_BYTES / 2**20)
    with TestClient(create_app(settings, engine=engine, sessions=sessions_in_transaction)) as c:
        yield c


@pytest.fixture
def world(files: TestClient, mini_county: Any, make_key: Any) -> dict[str, Any]:
    admin = make_key("admin", "county-admin")
    ids = {}
    for name, (lon, lat) in (("a", POINT_A), ("a2", POINT_A), ("b", POINT_B)):
        r = files.post(
            "/incidents", json={"category": "dispute", "source": "grid_patrol", "lon": lon, "lat": lat}, headers=admin
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    return {
        "ids": ids,
        "reporter": make_key("reporter", "field-reporter"),
        "viewer": make_key("viewer", "screen-viewer"),
        "dispatcher": make_key("dispatcher", "centre-dispatcher"),
        "town_b": make_key("dispatcher", "town-b-dispatcher", "330421002"),
    }


def _post(client: TestClient, incident: int, data: bytes, headers: dict[str, str], **params: Any) -> Any:
    return client.post(
        f"/incidents/{incident}/attachments",
        content=data,
        params=params,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )


def _rows(connection: Connection) -> int:
    return int(connection.execute(sa.text("SELECT count(*) FROM attachments")).scalar_one())


def test_jpeg_with_gps_near_the_incident(files: TestClient, world: dict[str, Any]) -> None:
    data = jpeg(POINT_A[0] + 0.0005, POINT_A[1])  # about 48 m east of the incident
    r = _post(files, world["ids"]["a"], data, world["reporter"], filename="现场.jpg")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["media_type"] == "image/jpeg" and body["size_bytes"] == len(data)
    assert body["original_name"] == "现场.jpg" and body["uploaded_by"] == "field-reporter"
    assert 40 < body["distance_m"] < 56 and body["flagged_far"] is False
    assert body["claimed_lon"] == pytest.approx(POINT_A[0]) and "exif_lon" not in body  # reporter < dispatcher
    seen = files.get(f"/incidents/{world['ids']['a']}/attachments", headers=world["dispatcher"]).json()
    (item,) = seen["attachments"]
    assert item["exif_lon"] == pytest.approx(POINT_A[0] + 0.0005, abs=1e-6)
    taken = dt.datetime.fromisoformat(item["exif_taken_at"])  # the camera's local time is the county's
    assert taken == dt.datetime(2026, 11, 30, 1, 15, tzinfo=dt.UTC)


def test_far_from_the_claimed_position_is_flagged(files: TestClient, world: dict[str, Any]) -> None:
    data = jpeg(POINT_A[0], POINT_A[1])
    claim = {"lon": POINT_A[0] + 0.004, "lat": POINT_A[1]}  # about 380 m away
    body = _post(files, world["ids"]["a"], data, world["reporter"], **claim).json()
    assert body["flagged_far"] is True and 350 < body["distance_m"] < 420
    no_gps = _post(files, world["ids"]["a"], jpeg(None, None), world["reporter"]).json()
    assert no_gps["distance_m"] is None and no_gps["flagged_far"] is False


def test_png_heic_and_pdf(files: TestClient, world: dict[str, Any]) -> None:
    incident = world["ids"]["a"]
    r_png = _post(files, incident, png(), world["reporter"])
    assert r_png.status_code == 201 and r_png.json()["media_type"] == "image/png"
    r_heic = _post(files, incident, heic(*POINT_A), world["reporter"])
    assert r_heic.status_code == 201, r_heic.text
    converted = r_heic.json()
    assert converted["media_type"] == "image/jpeg" and converted["converted_from"] == "image/heic"
    stored = files.get(converted["url"], headers=world["dispatcher"])
    assert stored.headers["content-type"] == "image/jpeg" and media.detect(stored.content[:64]) == "image/jpeg"
    assert converted["distance_m"] is not None and converted["distance_m"] < 1
    r_pdf = _post(files, incident, pdf(), world["reporter"], filename="整改通知书.pdf")
    assert r_pdf.status_code == 201 and r_pdf.json()["thumbnail_url"] is None
    assert files.get(f"/attachments/{r_pdf.json()['id']}/thumbnail", headers=world["viewer"]).status_code == 404
    assert files.get(r_pdf.json()["url"], headers=world["viewer"]).content == pdf()


def test_a_text_file_named_jpg_is_415(files: TestClient, world: dict[str, Any], connection: Connection) -> None:
    r = files.post(
        f"/incidents/{world['ids']['a']}/attachments",
        files={"file": ("photo.jpg", b"just some notes, not a photo\n", "image/jpeg")},
        headers=world["reporter"],
    )
    assert r.status_code == 415 and "text/plain" in r.json()["detail"]
    assert _rows(connection) == 0


def test_oversized_is_413_naming_the_limit(files: TestClient, world: dict[str, Any], connection: Connection) -> None:
    big = jpeg(size=(1200, 1000), quality=95)
    assert len(big) > MAX_BYTES
    r = _post(files, world["ids"]["a"], big, world["reporter"])
    assert r.status_code == 413 and f"{MAX_BYTES:,} bytes" in r.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is found while streaming
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = files.post(f"/incidents/{world['ids']['a']}/attachments", content=chunked(), headers=world["reporter"])
    assert r.status_code == 413 and "GRIDMAP_ATTACHMENT_MAX_MB" in r.json()["detail"]
    multi = files.post(
        f"/incidents/{world['ids']['a']}/attachments", files={"file": ("big.jpg", big)}, headers=world["reporter"]
    )
    assert multi.status_code == 413
    assert _rows(connection) == 0


def test_truncated_is_400(files: TestClient, world: dict[str, Any], connection: Connection) -> None:
    data = jpeg()
    r = _post(files, world["ids"]["a"], data[: len(data) * 2 // 3], world["reporter"])
    assert r.status_code == 400 and "cut short" in r.json()["detail"]
    cut = files.post(
        f"/incidents/{world['ids']['a']}/attachments",
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n' + data[:5000],
        headers={**world["reporter"], "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert cut.status_code == 400 and "truncated" in cut.json()["detail"]
    assert _rows(connection) == 0


def test_exif_is_stripped_below_dispatcher(files: TestClient, world: dict[str, Any]) -> None:
    data = jpeg(*POINT_A)
    r = files.post(
        f"/incidents/{world['ids']['a']}/attachments",
        files={"file": ("evidence.jpg", data, "image/jpeg")},
        headers=world["reporter"],
    )
    assert r.status_code == 201 and r.json()["original_name"] == "evidence.jpg"
    url = r.json()["url"]
    kept = files.get(url, headers=world["dispatcher"])
    assert kept.status_code == 200 and kept.content == data
    served = files.get(url, headers=world["viewer"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert MAKER.encode() not in served.content and not Image.open(io.BytesIO(served.content)).getexif()
    assert Image.open(io.BytesIO(served.content)).size == (640, 480)


def test_thumbnail_made_once_and_content_stored_once(
    files: TestClient, world: dict[str, Any], connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    real = media._write_thumbnail
    monkeypatch.setattr(media, "_write_thumbnail", lambda im, out: (made.append(1), real(im, out)))
    data = jpeg(*POINT_A)
    first = _post(files, world["ids"]["a"], data, world["reporter"])
    again = _post(files, world["ids"]["a"], data, world["reporter"])
    other = _post(files, world["ids"]["a2"], data, world["reporter"])
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"] and other.json()["id"] != first.json()["id"]
    assert len(made) == 1 and _rows(connection) == 2
    keys = connection.execute(sa.text("SELECT DISTINCT thumbnail_key FROM attachments")).scalars().all()
    assert len(keys) == 1
    thumb = files.get(other.json()["thumbnail_url"], headers=world["viewer"])
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) == media.THUMBNAIL_PX
    store = Path(files.app.state.settings.attachment_root)  # type: ignore[attr-defined]
    objects = [p for p in store.rglob("*") if p.is_file() and p.parent.name not in ("tmp", "incoming")]
    assert len(objects) == 3  # the photo, its stripped copy, its thumbnail: once each


def test_outside_the_scope_is_404_everywhere(files: TestClient, world: dict[str, Any]) -> None:
    mine = _post(files, world["ids"]["b"], jpeg(*POINT_B), world["reporter"]).json()
    theirs = _post(files, world["ids"]["a"], jpeg(*POINT_A), world["reporter"]).json()
    town_b = world["town_b"]
    assert files.get(mine["url"], headers=town_b).status_code == 200
    assert files.get(f"/incidents/{world['ids']['b']}/attachments", headers=town_b).status_code == 200
    for path in (theirs["url"], theirs["thumbnail_url"], f"/incidents/{world['ids']['a']}/attachments"):
        assert files.get(path, headers=town_b).status_code == 404, path
    assert _post(files, world["ids"]["a"], jpeg(), town_b).status_code == 404
    assert files.get("/attachments/999999", headers=town_b).status_code == 404
    assert _post(files, 999999, jpeg(), world["reporter"]).status_code == 404


def test_roles_and_claim_validation(files: TestClient, world: dict[str, Any]) -> None:
    assert _post(files, world["ids"]["a"], jpeg(), world["viewer"]).status_code == 403
    half = _post(files, world["ids"]["a"], jpeg(), world["reporter"], lon=120.9)
    assert half.status_code == 422 and half.json()["detail"][0]["loc"] == ["query", "lat"]
    bad = _post(files, world["ids"]["a"], jpeg(), world["reporter"], lon=120.9, lat=30.8, crs="mars")
    assert bad.status_code == 422 and "mars" in bad.json()["detail"][0]["msg"]
