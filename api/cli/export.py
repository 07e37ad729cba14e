"""``gridmap export LAYER --format ... --out FILE``: a layer to GeoPackage, GeoJSON, Shapefile, CSV or XLSX."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from api.cli._names import EXPORT_LAYERS
from gis.core.timeparse import Bound, check_window, parse_time

# gis.outputs.export (geopandas, pandas) and the database modules are imported inside the command:
# see api/cli/__init__.py.


def _moment(value: str | None, option: str, bound: Bound) -> dt.datetime | None:
    """An option's time by the one rule (gis.core.timeparse: no offset = county time)."""
    return None if value is None else parse_time(value, bound=bound, field=option)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        layer: str = typer.Argument(..., help=", ".join((*EXPORT_LAYERS, "staff"))),
        format: str = typer.Option("gpkg", "--format", "-f", help="gpkg, geojson, shp (zipped), csv or xlsx"),
        out: Path = typer.Option(..., "--out", "-o", help="file to write (a .zip for shp)"),
        crs: str = typer.Option("wgs84", help="wgs84 (EPSG:4326), gcj02 or cgcs2000 (EPSG:4490)"),
        as_of: str | None = typer.Option(
            None,
            "--as-of",
            help="boundaries in force at this time (a bare date: the end of that day; no offset = county time)",
        ),
        start: str | None = typer.Option(None, help="incidents/hazards from this time (no offset = county time)"),
        end: str | None = typer.Option(None, help="incidents/hazards before this time (a bare date includes that day)"),
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
        from gis.outputs.export import export_layer, parse_format
        from gis.outputs.exportcrs import parse_export_crs

        fmt, out_crs = parse_format(format), parse_export_crs(crs)
        # The times are read (and the window checked) before anything connects to the database.
        at, first, last = (
            _moment(as_of, "--as-of", "instant"),
            _moment(start, "--start", "start"),
            _moment(end, "--end", "end"),
        )
        check_window(first, last, start_field="--start", end_field="--end")
        role = "admin" if personal_data else "viewer"
        engine = engine_from_settings()
        with transaction(engine) as session:
            result = export_layer(
                session, layer, fmt, out, crs=out_crs, role=role, as_of=at, start=first, end=last
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
