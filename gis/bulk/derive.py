"""Columns each table needs beyond what the file gives, and the keys that make re-imports idempotent.

Keys (re-importing a file adds nothing):

* incidents: ``(source, external_id)``; a row without an external id gets ``h:`` + a hash of its
  content (category, source, time, position, texts), so the same row in any encoding or format
  gets the same id;
* buildings: ``code``;
* addresses: the normalized text (gis.spatial.address_text.normalize_address);
* hazards: a hash of category, found_at, position and description (``content_key``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from gis.bulk.validate import Problems
from gis.bulk.values import as_objects
from gis.incidents.rules import CATEGORIES
from gis.spatial.address_text import AddressError, parse_address

ADDRESS_PARTS = ("road", "house_no", "building_no", "unit_no", "room_no", "group_no")
ObjArray = npt.NDArray[np.object_]


def _us(stamps: pd.Series) -> npt.NDArray[np.int64]:
    values = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return np.where(np.isnat(values), 0, values.astype(np.int64))


def _digest(parts: list[ObjArray]) -> ObjArray:
    rows = zip(*[p.tolist() for p in parts], strict=True)
    return np.asarray(
        [
            hashlib.blake2b("\x1f".join("" if v is None else str(v) for v in r).encode(), digest_size=16).hexdigest()
            for r in rows
        ],
        dtype=object,
    )


def _text(frame: pd.DataFrame, name: str) -> ObjArray:
    return as_objects(frame[name]) if name in frame else np.full(len(frame), None, dtype=object)


def derive_incidents(frame: pd.DataFrame, deadline_overrides: Mapping[str, float]) -> None:
    hours = {code: float(deadline_overrides.get(code, c.deadline_hours)) for code, c in CATEGORIES.items()}
    missing = frame["deadline_at"].isna() & frame["category"].notna() & frame["reported_at"].notna()
    if missing.any():
        delta = pd.to_timedelta(frame.loc[missing, "category"].map(hours).astype(float), unit="h")
        frame.loc[missing, "deadline_at"] = frame.loc[missing, "reported_at"] + delta
    no_id = frame["external_id"].isna().to_numpy()
    if no_id.any():
        sub = frame.loc[no_id]
        parts = [
            _text(sub, "category"),
            _text(sub, "source"),
            _us(sub["reported_at"]).astype(object),
            np.asarray(list(map(repr, sub["received_lon"].tolist())), dtype=object),
            np.asarray(list(map(repr, sub["received_lat"].tolist())), dtype=object),
            _text(sub, "address_text"),
            _text(sub, "description"),
            _text(sub, "reporter_name"),
            _text(sub, "reporter_phone"),
        ]
        ids = np.char.add("h:", _digest(parts).astype(str)).astype(object)
        frame.loc[no_id, "external_id"] = ids


def incident_keys(frame: pd.DataFrame) -> ObjArray:
    return (frame["source"].astype(str) + "\x1f" + frame["external_id"].astype(str)).to_numpy(dtype=object)


def derive_addresses(frame: pd.DataFrame, problems: Problems) -> None:
    n = len(frame)
    parsed: dict[str, list[object]] = {name: [None] * n for name in ("normalized", "precision", *ADDRESS_PARTS)}
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, None, dtype=object)
    for i, text in enumerate(frame["full_text"].tolist()):
        if text is None:
            continue
        try:
            p = parse_address(text)
        except AddressError as exc:
            bad[i], reasons[i] = True, str(exc)
            continue
        parsed["normalized"][i] = p.normalized
        parsed["precision"][i] = p.precision
        for name in ADDRESS_PARTS:
            parsed[name][i] = getattr(p, name)
    problems.add(bad, "full_text", frame["full_text"].to_numpy(dtype=object), reasons)
    for name, values in parsed.items():
        frame[name] = pd.Series(values, dtype=object, index=frame.index)


def derive_hazards(frame: pd.DataFrame) -> None:
    parts = [
        _text(frame, "category"),
        _us(frame["found_at"]).astype(object),
        np.asarray(list(map(repr, frame["lon"].tolist())), dtype=object),
        np.asarray(list(map(repr, frame["lat"].tolist())), dtype=object),
        _text(frame, "description"),
    ]
    frame["content_key"] = _digest(parts)


def hazard_key_of(category: str, found_at_us: int, lon: float, lat: float, description: str | None) -> str:
    """The content key of a stored hazard (same recipe as ``derive_hazards``)."""
    parts = [np.asarray([v], dtype=object) for v in (category, found_at_us, repr(lon), repr(lat), description)]
    return str(_digest(parts)[0])


def derive_buildings(frame: pd.DataFrame) -> None:
    # Columns that are NOT NULL with a default in the table: an absent value takes the default.
    for name in ("households", "residents", "new_residents"):
        frame[name] = frame[name].fillna(0)
    frame["is_rental"] = frame["is_rental"].astype(bool)


def keys(kind: str, frame: pd.DataFrame) -> ObjArray:
    if kind == "incidents":
        return incident_keys(frame)
    if kind == "buildings":
        return frame["code"].to_numpy(dtype=object)
    if kind == "addresses":
        return frame["normalized"].to_numpy(dtype=object)
    return frame["content_key"].to_numpy(dtype=object)
