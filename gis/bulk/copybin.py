"""PostgreSQL binary COPY, encoded column-wise with numpy.

psycopg's ``write_row`` costs a few microseconds a row, which at a million rows is longer than
the whole rest of the import. Here every fixed-width column is packed big-endian by numpy, runs
of columns without NULLs are fused into one byte string per row, and the rows are joined in one
``b"".join``; only text values are touched one by one (and low-cardinality text is encoded once
per distinct value). Binary COPY also spares the server from parsing floats and timestamps.

Types: ``float8``, ``int2``, ``int4``, ``int8``, ``bool``, ``timestamptz`` (datetime64, UTC),
``point`` (PostGIS geometry from lon/lat, SRID 4326, sent as EWKB) and ``text``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

PgType = Literal["float8", "int2", "int4", "int8", "bool", "timestamptz", "point", "text"]
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
NULL = struct.pack(">i", -1)
_PG_EPOCH_US = np.int64(946_684_800_000_000)  # 2000-01-01T00:00:00Z in Unix microseconds
# EWKB of a 2D point with SRID 4326, little-endian: byte order, type|SRID flag, SRID.
_EWKB_POINT_PREFIX = np.frombuffer(b"\x01" + struct.pack("<I", 0x20000001) + struct.pack("<I", 4326), dtype=np.uint8)
_WIDTH = {"float8": 8, "int2": 2, "int4": 4, "int8": 8, "bool": 1, "timestamptz": 8, "point": 25}


class CopyEncodeError(ValueError):
    pass


@dataclass
class Column:
    """One column of a chunk. ``values`` per type: numbers, bools, datetime64 (UTC), (lon, lat) pairs
    (an (n, 2) float array) for ``point``, or objects (str/None) for ``text``."""

    name: str
    pg: PgType
    values: npt.ArrayLike | pd.Series


def _fixed(col: Column, n: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_], npt.NDArray[np.generic]]:
    """(n, 4 + width) bytes of length prefix + value, the NULL mask, and the values as numbers (for factorizing)."""
    width = _WIDTH[col.pg]
    out = np.empty((n, 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(struct.pack(">i", width), dtype=np.uint8)
    if col.pg == "point":
        xy = np.asarray(col.values, dtype=np.float64).reshape(n, 2)
        null = np.asarray(~np.isfinite(xy).all(axis=1), dtype=bool)
        out[:, 4:13] = _EWKB_POINT_PREFIX
        out[:, 13:29] = np.ascontiguousarray(xy.astype("<f8")).view(np.uint8).reshape(n, 16)
        return out, null, xy[:, 0]
    if col.pg == "timestamptz":
        stamps = pd.Series(col.values)
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        raw = stamps.to_numpy(dtype="datetime64[us]")
        null = np.isnat(raw)
        micros = np.where(null, 0, raw.astype(np.int64)) - _PG_EPOCH_US
        data = micros.astype(">i8")
        keys: npt.NDArray[np.generic] = micros
    elif col.pg == "float8":
        floats = np.asarray(col.values, dtype=np.float64)
        null = np.isnan(floats)
        data = floats.astype(">f8")
        keys = floats
    elif col.pg in ("int2", "int4", "int8"):
        series = pd.Series(col.values)
        null = series.isna().to_numpy()
        ints = series.fillna(0).to_numpy(dtype=np.int64)
        big_endian = {"int2": ">i2", "int4": ">i4", "int8": ">i8"}[col.pg]
        if len(ints) and (ints.min() < np.iinfo(big_endian).min or ints.max() > np.iinfo(big_endian).max):
            raise CopyEncodeError(f"column {col.name}: value out of range for {col.pg}")
        data = ints.astype(big_endian)
        keys = ints
    elif col.pg == "bool":
        series = pd.Series(col.values)
        null = series.isna().to_numpy()
        data = series.fillna(False).to_numpy(dtype=bool).astype(np.uint8)
        keys = data
    else:
        raise CopyEncodeError(f"column {col.name}: no fixed-width encoding for {col.pg}")
    out[:, 4:] = np.ascontiguousarray(data).view(np.uint8).reshape(n, width)
    return out, null, keys


def _rows_of(block: npt.NDArray[np.uint8]) -> list[bytes]:
    n, width = block.shape
    rows: list[bytes] = np.ascontiguousarray(block).view(f"V{width}").ravel().tolist()
    return rows


@dataclass
class _Coded:
    """A column as a code per row into a table of encoded values (NULL included)."""

    codes: npt.NDArray[np.intp]
    table: list[bytes]


def _coded_text(values: npt.ArrayLike | pd.Series) -> _Coded | list[npt.NDArray[np.object_]]:
    """Few distinct values: a _Coded column; many: item arrays (length prefix, data)."""
    series = pd.Series(values, dtype=object)
    n = len(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) * 4 < n or n < 8:
        table = [_frame_text(v) for v in uniques] + [NULL]
        return _Coded(np.where(codes < 0, len(uniques), codes), table)
    null = codes < 0
    data = np.empty(n, dtype=object)
    data[:] = [b"" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v).encode("utf-8")
               for v in series.tolist()]  # fmt: skip
    lengths = np.fromiter(map(len, data), dtype=np.int64, count=n)
    lengths[null] = -1
    prefix = np.empty(n, dtype=object)
    prefix[:] = lengths.astype(">i4").view("V4").tolist()
    return [prefix, data]


def _coded_fixed(
    block: npt.NDArray[np.uint8], null: npt.NDArray[np.bool_], keys: npt.NDArray[np.generic]
) -> _Coded | None:
    """A nullable fixed-width column with few distinct values as _Coded; None when it has many."""
    n = len(block)
    if np.issubdtype(keys.dtype, np.floating):
        values: object = np.where(null, np.nan, keys)
    else:  # integers (and microseconds) stay exact: a float key could merge two distinct values
        ints = pd.array(keys.astype(np.int64), dtype="Int64")
        ints[null] = pd.NA
        values = ints
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) * 4 >= n and n >= 8:
        return None
    _, first = np.unique(codes, return_index=True)
    valid = codes[first] >= 0
    table = [b""] * len(uniques)
    for code, row in zip(codes[first][valid], first[valid], strict=True):
        table[code] = block[row].tobytes()
    return _Coded(np.where(codes < 0, len(uniques), codes), [*table, NULL])


def _frame_text(value: object) -> bytes:
    data = str(value).encode("utf-8")
    return struct.pack(">i", len(data)) + data


class _Combo:
    """Consecutive coded columns fused into one code per row while the combinations stay few."""

    def __init__(self, n: int):
        self.n = n
        self.members: list[_Coded] = []
        self.codes = np.zeros(n, dtype=np.intp)
        self.count = 1

    def try_add(self, col: _Coded) -> bool:
        merged = self.codes.astype(np.int64) * len(col.table) + col.codes
        codes, uniques = pd.factorize(merged)
        if self.members and len(uniques) * 4 >= self.n:
            return False
        self.members.append(col)
        self.codes, self.count = codes, len(uniques)
        return True

    def items(self) -> npt.NDArray[np.object_]:
        _, first = np.unique(self.codes, return_index=True)
        table = np.empty(self.count, dtype=object)
        table[:] = [b"".join(m.table[m.codes[i]] for m in self.members) for i in first]
        return table[self.codes]


def encode(columns: Sequence[Column], *, header: bool = True, trailer: bool = True) -> bytes:
    """Binary COPY data for the rows of ``columns`` (all the same length).

    Each row is joined from a few byte strings: runs of fixed-width columns without NULLs fused
    by numpy, runs of low-cardinality columns fused into one encoded combination, and the
    remaining (high-cardinality) values one by one.
    """
    lengths = {len(c.values) for c in columns}  # type: ignore[arg-type]
    if len(lengths) != 1:
        raise CopyEncodeError(f"columns differ in length: {sorted(lengths)}")
    n = lengths.pop()
    pieces: list[npt.NDArray[np.object_]] = []
    run: list[npt.NDArray[np.uint8]] = [np.tile(np.frombuffer(struct.pack(">h", len(columns)), np.uint8), (n, 1))]
    combo: _Combo | None = None

    def flush_run() -> None:
        if run:
            items = np.empty(n, dtype=object)
            items[:] = _rows_of(np.hstack(run))
            pieces.append(items)
            run.clear()

    def flush_combo() -> None:
        nonlocal combo
        if combo is not None:
            pieces.append(combo.items())
            combo = None

    def add_coded(col: _Coded) -> None:
        nonlocal combo
        flush_run()
        if combo is None or not combo.try_add(col):
            flush_combo()
            combo = _Combo(n)
            combo.try_add(col)

    for col in columns:
        if col.pg == "text":
            coded = _coded_text(col.values)
            if isinstance(coded, _Coded):
                add_coded(coded)
            else:
                flush_run()
                flush_combo()
                pieces.extend(coded)
            continue
        block, null, keys = _fixed(col, n)
        if not null.any():
            flush_combo()
            run.append(block)
            continue
        fixed = _coded_fixed(block, null, keys)
        if fixed is not None:
            add_coded(fixed)
            continue
        flush_run()
        flush_combo()
        items = np.empty(n, dtype=object)
        items[:] = _rows_of(block)
        items[null] = NULL
        pieces.append(items)
    flush_run()
    flush_combo()
    grid = np.empty((n, len(pieces)), dtype=object)
    for i, items in enumerate(pieces):
        grid[:, i] = items
    body = b"".join(grid.ravel().tolist())
    return (HEADER if header else b"") + body + (TRAILER if trailer else b"")
