"""Row validation for bulk import, vectorized with pandas: every problem is named by row, field and reason.

``validate`` turns a RawTable into typed columns (``Validated.frame``, one row per record, in file
order) plus a list of problems. A record with any problem is left out of ``good``; whether the
file is refused or loaded without them is the caller's choice (all-or-nothing by default).
Value parsing (texts, numbers, times) is gis/bulk/values.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gis.bulk.readers import ImportFileError, RawTable
from gis.bulk.specs import Field, Spec
from gis.bulk.values import BoolArray, _texts, parse_numbers, parse_times
from gis.spatial.crs import InputCRS, to_wgs84

TRUE_WORDS = {"true", "t", "yes", "y", "1", "是", "有", "√"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "否", "无", "×"}
NAN_WORDS = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "#num!", "#value!"}
# Mainland China, roughly: used to recognise swapped coordinates.
CHINA_LON = (72.0, 138.0)
CHINA_LAT = (0.8, 56.0)


@dataclass
class Problems:
    """Problems found so far, as parallel lists (positions are 0-based record indices)."""

    positions: list[npt.NDArray[np.int64]] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    values: list[npt.NDArray[np.object_]] = field(default_factory=list)
    reasons: list[npt.NDArray[np.object_] | str] = field(default_factory=list)

    def add(self, mask: BoolArray, name: str, values: pd.Series | npt.NDArray[np.object_], reason: object) -> None:
        pos = np.flatnonzero(mask)
        if not len(pos):
            return
        vals = np.asarray(values, dtype=object)[pos]
        self.positions.append(pos)
        self.fields.append(name)
        self.values.append(vals)
        if isinstance(reason, np.ndarray):
            self.reasons.append(np.asarray(reason, dtype=object)[pos])
        elif callable(reason):
            self.reasons.append(np.asarray([reason(v) for v in vals], dtype=object))
        else:
            self.reasons.append(str(reason))

    def frame(self, rows: npt.NDArray[np.int64]) -> pd.DataFrame:
        """One line per problem: position, row (as the person sees it), field, value, reason."""
        if not self.positions:
            return pd.DataFrame({"position": [], "row": [], "field": [], "value": [], "reason": []})
        parts = []
        for pos, name, vals, reason in zip(self.positions, self.fields, self.values, self.reasons, strict=True):
            parts.append(
                pd.DataFrame(
                    {
                        "position": pos,
                        "row": rows[pos],
                        "field": name,
                        "value": [_show(v) for v in vals],
                        "reason": reason if isinstance(reason, np.ndarray) else np.full(len(pos), reason, object),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True).sort_values(["position", "field"], kind="stable")


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Validated:
    frame: pd.DataFrame  # typed columns per field, plus lon/lat (WGS-84), received_* and derived columns
    problems: pd.DataFrame
    rows: npt.NDArray[np.int64]
    notes: list[str]

    @property
    def bad(self) -> BoolArray:
        mask = np.zeros(len(self.frame), dtype=bool)
        mask[self.problems["position"].to_numpy(dtype=np.int64)] = True
        return mask


# --- columns ------------------------------------------------------------------------------


def resolve_columns(spec: Spec, raw: RawTable, mapping: Mapping[str, str]) -> dict[str, str]:
    """Field name -> the file's column holding it. Raises ImportFileError naming missing columns."""
    names = {f.name for f in spec.fields}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise ImportFileError(
            f"--map names unknown field(s) {', '.join(unknown)}; fields of {spec.kind}: {', '.join(sorted(names))}"
        )
    columns = [str(c) for c in raw.frame.columns]
    folded = {c.strip().lower(): c for c in columns}
    found: dict[str, str] = {}
    missing_mapped = []
    for f in spec.fields:
        if f.name in mapping:
            if mapping[f.name] not in columns:
                missing_mapped.append(f"{f.name}={mapping[f.name]}")
            else:
                found[f.name] = mapping[f.name]
            continue
        for candidate in (f.name, *f.aliases):
            if candidate.lower() in folded:
                found[f.name] = folded[candidate.lower()]
                break
    has_geometry = raw.geom_lon is not None
    required = [f.name for f in spec.fields if f.required and not (has_geometry and f.name in ("lon", "lat"))]
    missing = [n for n in required if n not in found]
    if missing_mapped or missing:
        parts = []
        if missing_mapped:
            parts.append(f"mapped column(s) not in the file: {', '.join(missing_mapped)}")
        if missing:
            parts.append(f"missing expected column(s): {', '.join(missing)}")
        raise ImportFileError(
            f"{raw.path.name}: {'; '.join(parts)}. The file has: {', '.join(columns) or '(no columns)'}. "
            f"Rename the columns or map them, e.g. --map {(missing or ['lon'])[0]}=<column>"
        )
    return found


def _fold(value: str) -> str:
    return value.strip().lower() if value.isascii() else value.strip()


# --- the validator -----------------------------------------------------------------------


@dataclass
class Options:
    crs: InputCRS = InputCRS.wgs84
    county: BaseGeometry | None = None  # for the "swapping would put it in the county" hint
    deadline_hours: Mapping[str, float] = field(default_factory=dict)


def validate(spec: Spec, raw: RawTable, columns: Mapping[str, str], options: Options) -> Validated:
    problems = Problems()
    n = len(raw)
    out: dict[str, object] = {}
    for f in spec.fields:
        if f.name in ("lon", "lat"):
            continue
        source = columns.get(f.name)
        series = raw.frame[source] if source is not None else pd.Series([None] * n, dtype=object)
        series = series.reset_index(drop=True)
        out[f.name] = _check_field(f, series, problems, source is not None)
    lon, lat, recv_lon, recv_lat = _coordinates(raw, columns, options, problems)
    # Object columns stay object: pandas would otherwise infer its string dtype and turn None into NaN.
    frame = pd.DataFrame(
        {
            k: pd.Series(v, dtype=object) if isinstance(v, np.ndarray) and v.dtype == object else v
            for k, v in out.items()
        }
    )
    frame["lon"], frame["lat"] = lon, lat
    frame["received_lon"], frame["received_lat"] = recv_lon, recv_lat
    frame["received_crs"] = options.crs.value
    notes = list(raw.notes)
    ignored = sorted(set(map(str, raw.frame.columns)) - set(columns.values()))
    if ignored:
        notes.append(f"ignored column(s): {', '.join(ignored)}")
    return Validated(frame, problems.frame(raw.rows), raw.rows, notes)


def _check_field(f: Field, series: pd.Series, problems: Problems, present: bool) -> object:
    if f.kind == "float":
        values, blank, bad = parse_numbers(series)
        problems.add(bad, f.name, series, lambda v: f"not a number: {_show(v)!r}")
        return values
    if f.kind == "int":
        values, blank, bad = parse_numbers(series)
        problems.add(bad, f.name, series, lambda v: f"not a number: {_show(v)!r}")
        fractional = ~blank & ~bad & (np.floor(values) != values)
        problems.add(fractional, f.name, series, "not a whole number")
        if f.minimum is not None:
            problems.add(~blank & ~bad & (values < f.minimum), f.name, series, f"must be at least {f.minimum:g}")
        result = pd.array(np.where(blank | bad | fractional, 0, values).astype(np.int64), dtype="Int64")
        result[blank | bad | fractional] = pd.NA
        _require(f, blank, series, problems)
        return result
    if f.kind == "time":
        stamps, blank, bad = parse_times(series)
        problems.add(bad, f.name, series, lambda v: f"unparseable time {_show(v)!r} (expected e.g. 2024-05-01 08:30)")
        _require(f, blank, series, problems)
        return stamps
    texts = _texts(series)
    blank = texts.blank
    if f.kind == "bool":
        truth_u = [v is not None and _fold(v) in TRUE_WORDS for v in texts.uniques]
        false_u = [v is not None and _fold(v) in FALSE_WORDS for v in texts.uniques]
        truth = texts.spread(truth_u).astype(bool)
        falsity = texts.spread(false_u).astype(bool)
        problems.add(~blank & ~truth & ~falsity, f.name, series, lambda v: f"not yes/no: {_show(v)!r}")
        _require(f, blank, series, problems)
        return truth
    if f.kind == "code":
        accepted = f.accepted()
        mapped_u = [None if v is None else accepted.get(v, accepted.get(_fold(v))) for v in texts.uniques]
        mapped = texts.spread(mapped_u)
        unknown = ~blank & texts.spread([m is None for m in mapped_u]).astype(bool)
        listing = ", ".join(f.codes or {})
        problems.add(unknown, f.name, series, lambda v: f"unknown {f.name} {_show(v)!r}; accepted: {listing}")
        if f.default is not None:
            mapped[blank] = f.default
        else:
            _require(f, blank, series, problems)
        return mapped
    text = texts.values
    if f.max_len is not None:
        long_u = [v is not None and len(v) > f.max_len for v in texts.uniques]
        too_long = texts.spread(long_u).astype(bool)
        problems.add(too_long, f.name, series, f"longer than {f.max_len} characters")
    _require(f, blank, series, problems)
    return text


def _require(f: Field, blank: BoolArray, series: pd.Series, problems: Problems) -> None:
    if f.required:
        problems.add(blank, f.name, series, "missing")


def _coordinates(
    raw: RawTable, columns: Mapping[str, str], options: Options, problems: Problems
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    n = len(raw)
    if raw.geom_lon is not None and raw.geom_lat is not None and "lon" not in columns:
        lon, lat = raw.geom_lon.copy(), raw.geom_lat.copy()
        geom_problem = raw.geom_problem if raw.geom_problem is not None else np.full(n, None, dtype=object)
        has_problem = np.array([p is not None for p in geom_problem], dtype=bool)
        problems.add(has_problem, "geometry", np.full(n, "", dtype=object), geom_problem)
        lon_raw = pd.Series(lon)
        lat_raw = pd.Series(lat)
        bad_lon = bad_lat = blank_lon = blank_lat = np.zeros(n, dtype=bool)
        usable = ~has_problem
    else:
        lon_raw = raw.frame[columns["lon"]].reset_index(drop=True)
        lat_raw = raw.frame[columns["lat"]].reset_index(drop=True)
        lon, blank_lon, bad_lon = parse_numbers(lon_raw)
        lat, blank_lat, bad_lat = parse_numbers(lat_raw)
        usable = np.ones(n, dtype=bool)
        for name, src, blank, bad in (("lon", lon_raw, blank_lon, bad_lon), ("lat", lat_raw, blank_lat, bad_lat)):
            problems.add(blank, name, src, "missing")
            problems.add(bad, name, src, _number_reason)
    numeric = usable & ~(blank_lon | blank_lat | bad_lon | bad_lat)
    swapped = numeric & _looks_swapped(lon, lat)
    if swapped.any():
        hint = _swap_hint(lon, lat, swapped, options.county)
        problems.add(swapped, "lon", lon_raw, hint)
    in_range = (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    out_lon = numeric & ~swapped & ~(np.abs(lon) <= 180)
    out_lat = numeric & ~swapped & ~(np.abs(lat) <= 90)
    problems.add(out_lon, "lon", lon_raw, lambda v: f"longitude {_show(v)} out of range -180..180")
    problems.add(out_lat, "lat", lat_raw, lambda v: f"latitude {_show(v)} out of range -90..90")
    ok = numeric & ~swapped & in_range
    wlon = np.full(n, np.nan)
    wlat = np.full(n, np.nan)
    if ok.any():
        wlon[ok], wlat[ok] = to_wgs84(lon[ok], lat[ok], options.crs)
    recv_lon = np.where(ok, lon, np.nan)
    recv_lat = np.where(ok, lat, np.nan)
    return wlon, wlat, recv_lon, recv_lat


def _number_reason(value: object) -> str:
    text = _show(value).strip().lower()
    if text in NAN_WORDS or (isinstance(value, float) and not np.isfinite(value)):
        return f"not a finite number: {_show(value)!r}"
    return f"not a number: {_show(value)!r}"


def _looks_swapped(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> BoolArray:
    """Latitude where the longitude should be and vice versa, for a place in China."""
    with np.errstate(invalid="ignore"):
        return (
            (lat >= CHINA_LON[0])
            & (lat <= CHINA_LON[1])
            & (lon >= CHINA_LAT[0])
            & (lon <= CHINA_LAT[1])
            & ~((lon >= CHINA_LON[0]) & (lon <= CHINA_LON[1]))
        )


def _swap_hint(
    lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], mask: BoolArray, county: BaseGeometry | None
) -> npt.NDArray[np.object_]:
    hint = np.full(len(lon), None, dtype=object)
    inside = np.zeros(len(lon), dtype=bool)
    if county is not None:
        inside[mask] = shapely.contains_xy(county, lat[mask], lon[mask])
    for i in np.flatnonzero(mask):
        text = f"longitude and latitude look swapped (lon={lon[i]:g}, lat={lat[i]:g})"
        if inside[i]:
            text += "; swapped they would lie inside the county"
        hint[i] = text + "; exchange the two columns or --map lon=... --map lat=..."
    return hint


__all__ = ["Options", "Problems", "Validated", "resolve_columns", "validate"]
