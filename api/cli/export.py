"""``gridmap export LAYER --format ... --out FILE``: a layer to GeoPackage, GeoJSON, Shapefile, CSV or XLSX."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from api.cli._names import EXPORT_LAYERS

# gis.outputs.export (geopandas, pandas) and the database modules are imported inside the command:
# see api/cli/__init__.py.


def _moment(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} {value!r} is not an ISO date or date-time (e.g. 2024-01-01T00:00+08:00)") from None
    # A bare date or time is read as China Standard Time, the county's clock.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        layer: str = typer.Argument(..., help=", ".join((*EXPORT_LAYERS, "staff"))),
        format: str = typer.Option("gpkg", "--format", "-f", help="gpkg, geojson, shp (zipped), csv or xlsx"),
        out: Path = typer.Option(..., "--out", "-o", help="file to write (a .zip for shp)"),
        crs: str = typer.Option("wgs84", help="wgs84 (EPSG:4326), gcj02 or cgcs2000 (EPSG:4490)"),
        as_of: str | None = typer.Option(None, "--as-of", help="boundaries in force at this time"),
        start: str | None = typer.Option(None, help="incidents/hazards from this time"),
        end: str | None = typer.Option(None, help="incidents/hazards before this time"),
        personal_data: bool = typer.Option(
            False, "--personal-data", help="leave names, phones and ID cards unmasked (audited)"
        ),
        encoding: str = typer.Option("utf-8", help="staff as CSV: utf-8 (with BOM) or gbk"),
    ) -> None:
        """Export a layer; personal data are masked unless --personal-data is given. ``staff`` writes
        every posting in the columns ``gridmap import staff`` reads (CSV or XLSX, by --out's suffix)."""
        if layer == "staff":
            _export_staff(out, encoding, personal_data)
            return
        from gis.core import audit
        from gis.core.db import engine_from_settings, transaction
        from gis.outputs.export import export_layer, parse_export_crs, parse_format

        fmt, out_crs = parse_format(format), parse_export_crs(crs)
        role = "admin" if personal_data else "viewer"
        engine = engine_from_settings()
        with transaction(engine) as session:
            result = export_layer(
                session, layer, fmt, out, crs=out_crs, role=role,
                as_of=_moment(as_of, "--as-of"), start=_moment(start, "--start"), end=_moment(end, "--end"),
            )  # fmt: skip
            audit.record(
                session, "cli", "export", layer,
                format=fmt.value, crs=out_crs.value, rows=result.count, personal_data=not result.masked,
            )  # fmt: skip
        typer.echo(f"wrote {result.count} {layer} to {result.path} ({fmt.value}, {out_crs.value})")


def _export_staff(out: Path, encoding: str, personal_data: bool) -> None:
    from gis.core import audit
    from gis.core.db import engine_from_settings
    from gis.people.staffexport import staff_frame, write_staff

    engine = engine_from_settings()
    try:
        with engine.begin() as conn:
            frame = staff_frame(conn, personal_data=personal_data)
            write_staff(frame, out, encoding)
            audit.record(conn, "cli", "export", "staff", rows=len(frame), personal_data=personal_data)
    finally:
        engine.dispose()
    typer.echo(f"wrote {len(frame)} postings to {out}")
