"""``gridmap shards ...``: sharding by county (gis.shards) from GRIDMAP_SHARDS."""

from __future__ import annotations

import typer
from rich.console import Console

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="sharding by county: coordinator and shards")
    app.add_typer(group, name="shards")

    @group.command("init")
    def init() -> None:
        """Prepare every shard (per-county views, pinned search_path) and (re)build the coordinator's
        foreign partitions. Each shard must be migrated first (`gridmap db up` with its URL)."""
        from gis.shards import coordinator
        from gis.shards.config import configured

        shard_map = configured()
        if shard_map is None:
            raise ValueError("GRIDMAP_SHARDS is not set: nothing to shard (see gis/shards/config.py)")
        placed = coordinator.init(shard_map)
        for shard, counties in placed.items():
            out.print(f"shard {shard}: {', '.join(counties) or '(no county)'}", highlight=False)
        out.print("coordinator ready", highlight=False)

    @group.command("status")
    def status() -> None:
        """Which county lives on which shard, and whether each shard answers."""
        from gis.shards.config import configured
        from gis.shards.routing import ShardRouter, ShardUnavailable

        shard_map = configured()
        if shard_map is None:
            out.print("one node (GRIDMAP_SHARDS is not set)")
            return
        router = ShardRouter(shard_map, pool_size=1)
        try:
            for shard in shard_map.shards:
                counties = shard_map.counties_on(shard)
                state = "up"
                if counties:
                    try:
                        with router.connect(counties[0]):
                            pass
                    except ShardUnavailable as exc:
                        state = f"DOWN ({exc})"
                out.print(f"shard {shard}: {', '.join(counties) or '(no county)'}: {state}", highlight=False)
        finally:
            router.dispose()
