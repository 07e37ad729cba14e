"""Which county lives on which shard, and where each shard and the coordinator are.

One settings entry, ``GRIDMAP_SHARDS``, a JSON object::

    {"coordinator": "postgresql+psycopg://postgres@/province?host=...",
     "shards": {"a": "postgresql+psycopg://...", "b": "postgresql+psycopg://..."},
     "counties": {"330421": "a", "330482": "b"}}

Shard names become foreign server names on the coordinator (``shard_<name>``), so they are
short lowercase identifiers; county codes are the 6-digit division codes that start every area
code of the county.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from gis.core.settings import get_settings

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_COUNTY = re.compile(r"^[0-9]{6}$")


class ShardConfigError(ValueError):
    """The shard configuration is unusable; the message names the entry."""


@dataclass(frozen=True)
class ShardMap:
    coordinator: str | None
    shards: dict[str, str]  # name -> SQLAlchemy URL
    counties: dict[str, str] = field(default_factory=dict)  # county code -> shard name

    def __post_init__(self) -> None:
        if not self.shards:
            raise ShardConfigError("shards: at least one shard is needed")
        for name, url in self.shards.items():
            if not _NAME.match(name):
                raise ShardConfigError(f"shards: {name!r} is not a shard name (lowercase letters, digits, _)")
            try:
                make_url(url)
            except Exception:
                raise ShardConfigError(f"shards.{name}: {url[:60]!r} is not a database URL") from None
        for county, shard in self.counties.items():
            if not _COUNTY.match(county):
                raise ShardConfigError(f"counties: {county!r} is not a 6-digit county code")
            if shard not in self.shards:
                raise ShardConfigError(f"counties.{county}: {shard!r} is not one of the shards {sorted(self.shards)}")

    def shard_of(self, county: str) -> str:
        """The shard holding ``county``; a county that is not configured is the caller's error."""
        try:
            return self.counties[county]
        except KeyError:
            raise ShardConfigError(f"county={county[:12]!r}: no shard holds this county") from None

    def counties_on(self, shard: str) -> list[str]:
        return sorted(c for c, s in self.counties.items() if s == shard)

    def to_json(self) -> str:
        return json.dumps({"coordinator": self.coordinator, "shards": self.shards, "counties": self.counties})

    @classmethod
    def from_json(cls, text: str) -> ShardMap:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ShardConfigError(f"GRIDMAP_SHARDS is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("shards"), dict):
            raise ShardConfigError('GRIDMAP_SHARDS must be an object with "shards" (and "counties", "coordinator")')
        return cls(
            coordinator=data.get("coordinator"),
            shards={str(k): str(v) for k, v in data["shards"].items()},
            counties={str(k): str(v) for k, v in (data.get("counties") or {}).items()},
        )


def configured() -> ShardMap | None:
    """The deployment's shard map, or None when it runs on one node."""
    text = get_settings().shards
    return ShardMap.from_json(text) if text else None
