"""``gridmap keys ...``: API keys, their accounts' roles and scopes."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from gis.core.vocab import ROLES

# The database modules are imported inside the commands: see api/cli/__init__.py.

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke")
    app.add_typer(group, name="keys")

    @group.command("create")
    def create(
        role: str = typer.Option(..., help=f"one of {', '.join(ROLES)}"),
        name: str = typer.Option(..., help="who or what uses the key"),
        scope: str | None = typer.Option(
            None,
            help="area codes CODE[,CODE] (town, village, grid, micro-grid, station, beat) the key is limited "
            "to; 'lookup' for coordinate lookups only; default the whole county (an org unit's: its area)",
        ),
        person: int | None = typer.Option(None, "--person", help="the person (id) the key's account belongs to"),
        org_unit: int | None = typer.Option(None, "--org-unit", help="the organisation unit (id) it belongs to"),
    ) -> None:
        """Create a key; it is printed once and only its hash is stored."""
        from gis.core import audit
        from gis.core.db import engine_from_settings, transaction
        from gis.people import keys

        if person is not None and org_unit is not None:
            raise typer.BadParameter("give --person or --org-unit, not both")
        engine = engine_from_settings()
        with transaction(engine) as session:
            key = keys.create_key(session, role, name, scope, person_id=person, org_unit_id=org_unit)
            audit.record(
                session, "cli", "key.create", name, role=role, scope=scope or "", person=person, org_unit=org_unit
            )
        typer.echo(key)

    @group.command("list")
    def list_() -> None:
        """List keys (never the secrets)."""
        from gis.core.db import engine_from_settings, transaction
        from gis.people import keys

        engine = engine_from_settings()
        with transaction(engine) as session:
            rows = keys.list_keys(session)
        table = Table("id", "name", "role", "scope", "account", "prefix", "created", "revoked")
        for r in rows:
            table.add_row(
                str(r["id"]),
                str(r["name"]),
                str(r["role"]),
                str(r["scope"]),
                str(r["account_id"]),
                str(r["prefix"]),
                f"{r['created_at']:%Y-%m-%d %H:%M}",
                f"{r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "",
            )
        out.print(table)

    @group.command("revoke")
    def revoke(key_id: int = typer.Argument(..., help="the key's id from `gridmap keys list`")) -> None:
        """Revoke a key; requests with it get 401 from then on."""
        from gis.core import audit
        from gis.core.db import engine_from_settings, transaction
        from gis.people import keys

        engine = engine_from_settings()
        with transaction(engine) as session:
            done = keys.revoke_key(session, key_id)
            if done:
                audit.record(session, "cli", "key.revoke", str(key_id))
        if not done:
            raise ValueError(f"no active key with id {key_id}")
        out.print(f"revoked key {key_id}")
