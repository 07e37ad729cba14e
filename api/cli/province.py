"""``gridmap seed province`` (registered by api/cli/seed.py) and ``gridmap demo-province``: the
province demo of issue #20 in a database of its own (default gridmap_province): Jiashan's real demo
and synthetic counties of Zhejiang, one API key for the province centre and one per county, the
API and maps served with those counties configured (GRIDMAP_COUNTIES)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

    from demo.province.load import ProvinceReport
    from gis.core.settings import Settings

# The database modules are imported inside the functions: see api/cli/__init__.py.

out = Console(soft_wrap=True)
err = Console(stderr=True)
KEYS_FILE = "province-keys.txt"


def print_report(report: ProvinceReport) -> None:
    out.print(f"province demo: {len(report.counties)} counties in {report.seconds:.1f}s", highlight=False)
    for c in report.counties:
        counts = ", ".join(f"{k} {v:,}" for k, v in c.counts.items())
        out.print(
            f"  {c.code} {c.name:<6} generation {c.generation:>3} {c.area_km2:>7.1f} km²  {counts} ({c.seconds:.1f}s)",
            highlight=False,
        )
    out.print("  Jiashan: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.jiashan_timings.items()), highlight=False)


def run_seed_province(
    counties: int, incidents_per_county: int | None, seed: int, force: bool, end: pd.Timestamp | None = None
) -> ProvinceReport:
    from demo.province.load import DEFAULT_INCIDENTS_PER_COUNTY, seed_province
    from gis.core.db import engine_from_settings

    engine = engine_from_settings()
    try:
        with err.status("seeding the province demo (Jiashan first)") as status:

            def progress(stage: str, done: int, total: int) -> None:
                status.update(f"seeding the province demo: {stage} ({done + 1}/{total})")

            report = seed_province(
                engine,
                counties=counties,
                incidents_per_county=DEFAULT_INCIDENTS_PER_COUNTY
                if incidents_per_county is None
                else incidents_per_county,
                seed=seed,
                end=end,
                force=force,
                progress=progress,
            )
    finally:
        engine.dispose()
    print_report(report)
    return report


def use_database(database: str, counties: list[str]) -> Settings:
    """Point this process (and the servers it starts) at ``database`` with ``counties`` configured."""
    from sqlalchemy.engine import make_url

    from gis.core.settings import get_settings

    current = get_settings()
    if current.database_url:
        os.environ["GRIDMAP_DATABASE_URL"] = (
            make_url(current.database_url).set(database=database).render_as_string(hide_password=False)
        )
    else:
        os.environ["GRIDMAP_PG_DATABASE"] = database
    os.environ["GRIDMAP_COUNTIES"] = ",".join(counties)
    get_settings.cache_clear()
    return get_settings()


def write_province_keys(settings: Settings, counties: list[tuple[str, str]]) -> dict[str, str]:
    """A viewer key (the least privilege that shows maps and KPIs) for the province centre (the
    whole deployment) and one per county (scoped to it), kept in var/province-keys.txt (0600)."""
    from sqlalchemy.orm import Session

    from gis.core import audit, db
    from gis.people import keys

    engine = db.engine_from_settings(settings)
    try:
        with Session(engine) as session, session.begin():
            created = {"province": keys.create_key(session, "viewer", "province-centre")}
            for code, name in counties:
                created[code] = keys.create_key(session, "viewer", f"{code}-{name}-centre", code)
            audit.record(session, "demo", "key.create", "province demo keys", counties=[c for c, _ in counties])
    finally:
        engine.dispose()
    path = settings.var_dir / KEYS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{who} {key}\n" for who, key in created.items()), encoding="utf-8")
    path.chmod(0o600)
    return created


def _seeded_counties(settings: Settings) -> list[tuple[str, str]]:
    from gis.core import db
    from gis.spatial.areas import current_counties

    engine = db.engine_from_settings(settings)
    try:
        with engine.connect() as conn:
            return current_counties(conn)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("demo-province")
    def demo_province(
        counties: int = typer.Option(10, min=1, max=90, help="counties of Zhejiang to seed (Jiashan first)"),
        incidents_per_county: int | None = typer.Option(
            None, min=0, help="incidents a year per county (default 2,000)"
        ),
        database: str = typer.Option("gridmap_province", help="the province demo's own database"),
        serve: bool = typer.Option(True, help="serve the API and maps after loading"),
        workers: int = typer.Option(2, min=1, help="uvicorn worker processes"),
        fresh: bool = typer.Option(False, "--fresh", help="seed again even if the database holds the demo"),
    ) -> None:
        """Seed the province demo into its own database (once; --fresh to redo it), make a key for the
        province centre and one per county, print the URLs and serve."""
        import uvicorn

        from demo.province.counties import first_counties
        from gis.core import db

        chosen = first_counties(counties)
        settings = use_database(database, [c.code for c in chosen])
        db.prepare(settings)
        seeded = _seeded_counties(settings)
        if fresh or [c for c, _ in seeded] != [c.code for c in chosen]:
            run_seed_province(counties, incidents_per_county, 42, force=True)
            seeded = _seeded_counties(settings)
        created = write_province_keys(settings, seeded)
        base = f"http://{settings.host}:{settings.port}"
        out.print(f"gridmap (province demo, database {database}) is starting on {base}", highlight=False)
        out.print(f"  {'API documentation':<22} {base}/docs", highlight=False)
        province_key = created["province"]
        out.print(f"  {'province map':<22} {base}/maps/command-center?key={province_key}", highlight=False)
        out.print(f"  {'province KPIs':<22} {base}/kpis  (X-API-Key: {province_key})", highlight=False)
        out.print(f"  keys (send as X-API-Key), also in {settings.var_dir / KEYS_FILE}:", highlight=False)
        out.print(f"    {'province':<8} {'(all counties)':<10} {province_key}", highlight=False)
        for code, name in seeded:
            out.print(f"    {code:<8} {name:<10} {created[code]}", highlight=False)
            out.print(f"      map: {base}/maps/command-center?key={created[code]}", highlight=False)
        if serve:
            uvicorn.run("api.main:app", host=settings.host, port=settings.port, workers=workers, log_level="info")
