"""``gridmap boundaries ...``: drafts, uploads, validation, impact, publishing, history, roll back.

The commands call the same functions as the API; they act as the OS user running them
(recorded in the audit log as ``cli:<user>``).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

# The boundaries package, geopandas and the database modules are imported inside each command:
# see api/cli/__init__.py.

out = Console(soft_wrap=True)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="Boundary planning: drafts, validation, publishing, history")
    app.add_typer(group, name="boundaries")

    @group.command("draft")
    def draft(
        layer: str = typer.Argument(..., help="town, village, grid, micro_grid, station or beat"),
        scope: str | None = typer.Option(None, help="a town or village code; default the whole county"),
        note: str = typer.Option("", help="why"),
    ) -> None:
        """Open a draft from the generation in force; prints its id."""
        from boundaries import drafts
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            draft_id = drafts.create_draft(session, layer, scope, author=_actor(), note=note)
            info = drafts.get_draft(session, draft_id)
        out.print(f"draft {draft_id}: {info.features} {layer} polygon(s) from generation {info.base_generation}")

    @group.command("upload")
    def upload(
        draft_id: int = typer.Argument(...),
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help=".geojson, .gpkg, .kml or zipped .shp"),
        crs: str | None = typer.Option(None, help="declare wgs84|gcj02|bd09 when the file has no usable CRS"),
        code_column: str | None = typer.Option(None, help="attribute holding the code"),
        encoding: str | None = typer.Option(None, help="attribute encoding of a Shapefile without .cpg"),
        mode: str = typer.Option("replace", help="replace (file = whole draft) or upsert"),
    ) -> None:
        """Load an edited layer into a draft."""
        from boundaries import drafts, fileio
        from gis.core.db import engine_from_settings, transaction
        from gis.core.settings import get_settings

        settings = get_settings()
        limit = int(settings.boundary_upload_max_mb * 1024 * 1024)
        if file.stat().st_size > limit:
            raise fileio.UploadError(f"{file.name}: {file.stat().st_size} bytes is over the limit of {limit}")
        gdf = fileio.read_upload(
            file.read_bytes(),
            file.name,
            declared_crs=crs,
            code_column=code_column,
            encoding=encoding,
            limits=fileio.UploadLimits(max_bytes=limit),
        )
        with transaction(engine_from_settings(settings)) as session:
            result = drafts.replace_features(session, draft_id, gdf, actor=_actor(), mode=mode)
        out.print(f"draft {draft_id}: {result['written']} written, {result['added']} new, {result['deleted']} deleted")

    @group.command("validate")
    def validate(draft_id: int = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
        """List validation findings; exits 1 when there are errors."""
        from boundaries.findings import Rules
        from boundaries.validate import validate_draft
        from gis.core.db import engine_from_settings, transaction
        from gis.core.settings import get_settings

        with transaction(engine_from_settings()) as session:
            report = validate_draft(session, draft_id, Rules.from_settings(get_settings()))
        if as_json:
            _json(report.to_dict())
        else:
            table = Table("severity", "kind", "code", "where", "message")
            for f in report.findings:
                table.add_row(f.severity, f.kind, f.code or "", f"{f.lon:.6f},{f.lat:.6f}", f.message)
            out.print(table)
            out.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        if not report.ok:
            raise typer.Exit(1)

    @group.command("impact")
    def impact(draft_id: int = typer.Argument(...)) -> None:
        """What would move from which unit to which (JSON)."""
        from boundaries.impact import preview_impact
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            _json(preview_impact(session, draft_id))

    @group.command("publish")
    def publish(draft_id: int = typer.Argument(...), note: str = typer.Option(..., help="why (audit log)")) -> None:
        """Publish a draft as a new generation in force from now."""
        from boundaries.findings import Rules
        from boundaries.publish import publish_draft
        from gis.core.db import engine_from_settings, transaction
        from gis.core.settings import get_settings

        settings = get_settings()
        with transaction(engine_from_settings(settings)) as session:
            result = publish_draft(
                session,
                draft_id,
                actor=_actor(),
                note=note,
                rules=Rules.from_settings(settings),
                snap_tolerance_m=settings.snap_tolerance_m,
            )
        _json(result.to_dict())

    @group.command("rebase")
    def rebase(draft_id: int = typer.Argument(...)) -> None:
        """Move a draft onto the generation in force, keeping its edits."""
        from boundaries import drafts
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            _json(drafts.rebase_draft(session, draft_id, actor=_actor()))

    @group.command("generations")
    def generations() -> None:
        """List boundary generations."""
        from boundaries import history
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            rows = history.generations(session)
        table = Table("id", "layers", "published", "author", "note", "")
        for g in rows:
            when = f"{g['published_at']:%Y-%m-%d %H:%M}" if g["published_at"] else "-"
            table.add_row(
                str(g["id"]), ",".join(g["layers"]), when, g["author"], g["note"], "in force" if g["in_force"] else ""
            )
        out.print(table)

    @group.command("diff")
    def diff(a: int = typer.Argument(...), b: int = typer.Argument(...)) -> None:
        """Polygons added, removed and changed from generation a to b (JSON)."""
        from boundaries import history
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            _json(history.diff_generations(session, a, b))

    @group.command("restore")
    def restore(generation: int = typer.Argument(...), note: str = typer.Option("", help="why")) -> None:
        """Roll back: publish an earlier generation again as a new generation."""
        from boundaries.publish import restore_generation
        from gis.core.db import engine_from_settings, transaction
        from gis.core.settings import get_settings

        settings = get_settings()
        with transaction(engine_from_settings(settings)) as session:
            result = restore_generation(
                session, generation, actor=_actor(), note=note, snap_tolerance_m=settings.snap_tolerance_m
            )
        _json(result.to_dict())

    @group.command("postings")
    def postings(
        draft_id: int = typer.Argument(...),
        personal_data: bool = typer.Option(False, "--personal-data", help="show names and phones unmasked"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """The postings a publish would move, end or add (successors by area overlap; decisions)."""
        from boundaries.postingplan import posting_plan
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            plan = posting_plan(session, draft_id).to_dict(personal_data)
        if as_json:
            _json(plan)
            return
        table = Table("entry", "action", "posting", "role", "person", "from", "to", "why", "problem")
        for m in plan["moves"]:
            table.add_row(
                str(m["entry_id"] or ""),
                m["action"],
                str(m["posting_id"] or ""),
                m["role"],
                m["name"] or "",
                m["from_code"] or "",
                m["to_code"] or "",
                m["reason"] + (f" (or {', '.join(m['alternatives'])})" if m["alternatives"] else ""),
                m["problem"] or "",
            )
        out.print(table)
        for code, heirs in plan["successors"].items():
            out.print(f"{code} -> " + ", ".join(f"{h['code']} ({h['share']:.0%})" for h in heirs))

    @group.command("decide")
    def decide(
        draft_id: int = typer.Argument(...),
        action: str = typer.Argument(
            ..., help="move (--posting, --to), end (--posting) or add (--person, --role, --to)"
        ),
        posting: int | None = typer.Option(None, help="posting id"),
        to: str | None = typer.Option(None, help="a unit code of the draft"),
        person: int | None = typer.Option(None, help="person id (add)"),
        role: str | None = typer.Option(None, help="role (add), e.g. grid_leader or 网格长"),
    ) -> None:
        """Decide about a posting in a draft (replaces an earlier decision about it)."""
        from boundaries.postingplan import decide as record
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            entry = record(
                session,
                draft_id,
                actor=_actor(),
                action=action,
                posting_id=posting,
                to_code=to,
                person_id=person,
                role=role,
            )
        out.print(f"draft {draft_id}: decision {entry['id']} recorded ({action})")

    @group.command("withdraw")
    def withdraw(draft_id: int = typer.Argument(...), entry: int = typer.Argument(..., help="decision id")) -> None:
        """Withdraw a posting decision; the proposal applies again."""
        from boundaries.postingplan import withdraw as remove
        from gis.core.db import engine_from_settings, transaction

        with transaction(engine_from_settings()) as session:
            remove(session, draft_id, entry, actor=_actor())
        out.print(f"draft {draft_id}: decision {entry} withdrawn")
