"""Value parsing for bulk import, vectorized with pandas: texts (each distinct value cleaned once),
numbers and times (naive times are China Standard Time), each with its blank and bad masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from gis.core.vocab import COUNTY_TZ

BoolArray = npt.NDArray[np.bool_]

# Formats tried, in order, for times that are not ISO 8601 (as Excel and Chinese systems write them).
TIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H时%M分",
    "%Y年%m月%d日",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y%m%d%H%M%S",
)
# An offset after a time of day (a bare date such as 2024-06-01 ends in "-01", which is no offset).
_HAS_OFFSET = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"


@dataclass
class Texts:
    """A text-like column, factorized: each distinct value is cleaned once, then spread by code.

    ``values``: stripped strings (None where blank), ``blank`` mask, and per distinct value its
    index (``codes``, -1 for missing) so callers can map codes once per distinct value too.
    """

    codes: npt.NDArray[np.intp]
    uniques: list[str | None]
    blank: BoolArray

    def spread(self, per_unique: Sequence[object]) -> npt.NDArray[np.object_]:
        table = np.empty(len(per_unique) + 1, dtype=object)
        table[:-1] = per_unique
        table[-1] = None
        return table[np.where(self.codes < 0, len(per_unique), self.codes)]

    @property
    def values(self) -> npt.NDArray[np.object_]:
        return self.spread(list(self.uniques))


def _texts(series: pd.Series) -> Texts:
    """Stripped text per distinct value; numbers and dates from a spreadsheet become text."""
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    cleaned: list[str | None] = []
    for value in uniques.tolist():
        text = (value if isinstance(value, str) else str(value)).strip()
        cleaned.append(text or None)
    empty = np.array([c is None for c in cleaned] + [True], dtype=bool)
    blank = empty[np.where(codes < 0, len(cleaned), codes)]
    return Texts(codes, cleaned, blank)


def _blank(series: pd.Series) -> BoolArray:
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        return _texts(series).blank
    return series.isna().to_numpy()


def as_objects(values: pd.Series | npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """Object array with None for every missing value (pandas may hand back NaN or NA instead)."""
    arr = np.asarray(values, dtype=object)
    out: npt.NDArray[np.object_] = arr.copy()
    out[pd.isna(arr)] = None
    return out


def parse_numbers(series: pd.Series) -> tuple[npt.NDArray[np.float64], BoolArray, BoolArray]:
    """Floats, and masks: blank, not a number (including NaN/inf words)."""
    if pd.api.types.is_float_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        blank = np.isnan(values)
        return values, blank, np.zeros(len(values), dtype=bool)
    blank = _blank(series)
    values = pd.to_numeric(series.astype(object).where(~blank, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = ~blank & ~np.isfinite(values)
    return values, blank, bad


def parse_times(series: pd.Series) -> tuple[pd.Series, BoolArray, BoolArray]:
    """UTC timestamps; naive inputs are China Standard Time. Masks: blank, unparseable."""
    # Blank = missing or empty; whitespace-only values are found among the unparseable below
    # (checking every value for whitespace would cost more than parsing them).
    blank = series.isna().to_numpy() | (series.astype(object) == "").to_numpy()
    n = len(series)
    out = pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]")
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series.reset_index(drop=True)
        if getattr(values.dt, "tz", None) is None:
            values = values.dt.tz_localize(COUNTY_TZ, ambiguous="NaT", nonexistent="NaT")
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), blank, np.zeros(n, dtype=bool)
    obj = series.astype(object).to_numpy()
    if pd.api.types.infer_dtype(obj, skipna=True) in ("string", "empty"):
        native = np.zeros(n, dtype=bool)
    else:
        native = np.array([hasattr(v, "year") and not isinstance(v, str) for v in obj], dtype=bool) & ~blank
    if native.any():
        stamps = [pd.Timestamp(v) for v in obj[native]]
        aware = [ts.tz_localize(COUNTY_TZ) if ts.tzinfo is None else ts for ts in stamps]
        out.iloc[np.flatnonzero(native)] = pd.to_datetime(aware, utc=True).astype("datetime64[us, UTC]")
    text_mask = ~blank & ~native
    if text_mask.any():
        text = pd.Series(obj[text_mask]).map(str).str.strip()
        parsed = _parse_text_times(text)
        if text_mask.all():
            out = parsed.reset_index(drop=True)
        else:
            out[text_mask] = parsed.array  # the array keeps the dtype; to_numpy() would box every value
    bad = ~blank & out.isna().to_numpy()
    if bad.any():
        spaces = np.array([isinstance(v, str) and not v.strip() for v in obj[bad]], dtype=bool)
        blank[np.flatnonzero(bad)[spaces]] = True
        bad = ~blank & out.isna().to_numpy()
    return out, blank, bad


def _parse_text_times(text: pd.Series) -> pd.Series:
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    # Fast path: the common "2024-05-01 08:30:00" (China time), parsed in C.
    common = pd.to_datetime(text, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    done = common.notna().to_numpy()
    if done.any():
        local = common[done].dt.tz_localize(COUNTY_TZ, ambiguous="NaT", nonexistent="NaT")
        result[done] = local.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if done.all():
        return result
    rest = text[~done]
    has_tz = np.zeros(len(text), dtype=bool)
    has_tz[~done] = rest.str.contains(_HAS_OFFSET, regex=True).to_numpy(dtype=bool)
    if has_tz.any():
        aware = pd.to_datetime(text[has_tz], format="ISO8601", utc=True, errors="coerce")
        result[has_tz] = aware.astype("datetime64[us, UTC]")
    naive_mask = ~done & ~has_tz
    if naive_mask.any():
        naive_text = text[naive_mask]
        naive = pd.to_datetime(naive_text, format="ISO8601", errors="coerce")
        for fmt in TIME_FORMATS:
            todo = naive.isna()
            if not todo.any():
                break
            naive[todo] = pd.to_datetime(naive_text[todo], format=fmt, errors="coerce")
        local = naive.dt.tz_localize(COUNTY_TZ, ambiguous="NaT", nonexistent="NaT")
        result[naive_mask] = local.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return result


def parse_time_text(values: list[str]) -> pd.Series:
    """Parse time strings as the importer does (for tests and callers with loose values)."""
    stamps, _blank_mask, _bad = parse_times(pd.Series(values, dtype=object))
    return stamps


__all__ = ["as_objects", "parse_numbers", "parse_time_text", "parse_times"]
