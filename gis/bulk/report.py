"""The import report (one line per bad row and field) and the reject file (the bad rows, as given)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gis.bulk.readers import RawTable


def default_report_path(source: Path) -> Path:
    return source.with_name(f"{source.stem}.report.csv")


def default_reject_path(source: Path) -> Path:
    return source.with_name(f"{source.stem}.rejects{source.suffix}")


def write_report(problems: pd.DataFrame, path: Path) -> Path:
    """CSV with a BOM so that Excel shows the Chinese reasons correctly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    problems[["row", "field", "value", "reason"]].to_csv(path, index=False, encoding="utf-8-sig")
    return path


def summarize(problems: pd.DataFrame, limit: int = 20) -> list[str]:
    """The first ``limit`` problems as lines 'row N, field: reason'."""
    lines = [f"row {int(r.row)}, {r.field}: {r.reason}" for r in problems.head(limit).itertuples()]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return lines


def errors_by_position(problems: pd.DataFrame) -> pd.Series:
    """'field: reason; field: reason' per bad record position."""
    text = problems["field"].astype(str) + ": " + problems["reason"].astype(str)
    return text.groupby(problems["position"].to_numpy()).agg("; ".join)


def write_rejects(raw: RawTable, problems: pd.DataFrame, path: Path) -> Path:
    """The bad records in the input's own format, with an ``_error`` column saying what is wrong."""
    errors = errors_by_position(problems)
    positions = errors.index.to_numpy()
    rejected = raw.frame.iloc[positions].copy()
    rejected["_row"] = raw.rows[positions]
    rejected["_error"] = errors.to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw.format == "csv":
        rejected.to_csv(path, index=False, encoding=raw.encoding or "utf-8-sig")
    elif raw.format == "xlsx":
        rejected.to_excel(path, index=False)
    else:
        import geopandas as gpd
        import pyogrio

        src = pyogrio.read_dataframe(raw.path)
        geometry = src.geometry.iloc[positions].to_numpy()
        out = gpd.GeoDataFrame(rejected.reset_index(drop=True), geometry=list(geometry), crs=src.crs)
        driver = "GPKG" if raw.format == "gpkg" else "GeoJSON"
        path.unlink(missing_ok=True)
        out.to_file(path, driver=driver)
    return path
