"""``gridmap export staff``: every posting (history included) as one row, in the columns that
``gridmap import staff`` reads, so an export imports back unchanged. CSV in UTF-8 (with a BOM, for
Excel) or GBK, or XLSX. Names, phones and ID card numbers are masked unless personal data are
asked for; a masked file is for reading, it does not import back (the masked numbers are refused).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from gis.people.roster import mask_posting
from gis.people.staffimport import COLUMNS
from gis.people.write import POSTING_COLUMNS, POSTING_FROM
from gis.spatial.areas import Conn

ENCODINGS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "gbk": "gbk", "gb18030": "gb18030"}


class ExportError(ValueError):
    pass


def staff_frame(conn: Conn, *, personal_data: bool, active_on: dt.date | None = None) -> pd.DataFrame:
    """The postings as a table with the import's columns (``active_on``: only those in force)."""
    where = "TRUE"
    params: dict[str, Any] = {}
    if active_on is not None:
        where = "pe.status = 'active' AND po.starts_on <= :on AND (po.ends_on IS NULL OR po.ends_on >= :on)"
        params["on"] = active_on
    rows = conn.execute(
        sa.text(
            f"SELECT {POSTING_COLUMNS} FROM {POSTING_FROM} WHERE {where} "  # noqa: S608
            "ORDER BY pe.id, po.starts_on, po.id"
        ),
        params,
    ).all()
    records = [mask_posting(dict(r._mapping), personal_data) for r in rows]
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, "id"])[list(COLUMNS)]
    for column in ("starts_on", "ends_on"):
        frame[column] = [d.isoformat() if d is not None else None for d in frame[column]]
    return frame.astype(object).where(frame.notna(), None)


def write_staff(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> Path:
    """CSV (by ``encoding``) or XLSX, by the file's suffix."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".xlsx":
        frame.to_excel(path, index=False)
    elif suffix in (".csv", ".txt"):
        codec = ENCODINGS.get(encoding.lower())
        if codec is None:
            raise ExportError(f"--encoding {encoding!r}: expected utf-8 or gbk")
        try:
            frame.to_csv(path, index=False, encoding=codec)
        except UnicodeEncodeError as exc:
            raise ExportError(f"a name cannot be written in {encoding}: {exc.object[exc.start : exc.end]!r}") from None
    else:
        raise ExportError(f"{path.name}: write .csv or .xlsx")
    return path
