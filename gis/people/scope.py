"""The scope of an account: the areas whose data its keys may read and write.

A scope is one or more area codes (town, village, grid, micro-grid; station or beat for the
police overlay). Area codes are hierarchical: a unit's code starts with its parent's code
(village 330421001001 is in town 330421001; beat 330421P0101 is in station 330421P01), so "inside
the scope" is a prefix test (``Scope.contains``). A county (its six-digit code, one of the
deployment's configured counties, GRIDMAP_COUNTIES) is a scope too: a county's key sees that
county's rows, matched on their ``county_code``. An empty scope is the whole deployment: every
configured county, the province for a province centre (keys made before scopes existed mean
that). The word ``lookup`` instead of codes makes a lookup-only scope: coordinate lookups answer
(they are never scoped), nothing else is visible.

The layer of a code, which selects the column a point row is matched on, is read from the code's
shape (``code_layer``): administrative codes are digits, 6 (county), 9 (town), 12 (village), 15
(grid) or 17 (micro-grid) long; police codes carry a letter after the county's six digits, 9
(station) or 11 (beat) long. ``check`` makes sure each code is also a unit of that layer in the
boundaries in force, so a stored scope always names real areas.

Rows outside the scope are treated as absent: details answer 404 like a missing id, lists and
maps leave them out. A row with no assignment (outside every county) is in the whole deployment;
a county's key also finds it in SQL selections (``where``, on county_code) when its county_code
names that county (the home county unless the writer named one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gis.spatial.areas import IN_GENERATION, Conn, current_generation

LOOKUP = "lookup"
# Code length -> layer, for administrative (digits only) and police (with a letter) codes.
_ADMIN_LENGTHS = {6: "county", 9: "town", 12: "village", 15: "grid", 17: "micro_grid"}
_POLICE_LENGTHS = {9: "station", 11: "beat"}
# The layers a scope may name (the whole deployment is the empty scope).
SCOPE_LAYERS = ("county", "town", "village", "grid", "micro_grid", "station", "beat")


class ScopeError(ValueError):
    """A scope code is unusable; ``code`` names it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"scope code {code!r} {reason}")
        self.code = code


def code_layer(code: str) -> str | None:
    """The layer a code's shape says (see the module docstring); None when it fits none."""
    if code.isdigit():
        return _ADMIN_LENGTHS.get(len(code))
    if len(code) > 6 and code[:6].isdigit() and code.isalnum():
        return _POLICE_LENGTHS.get(len(code))
    return None


@dataclass(frozen=True)
class Scope:
    """Area codes (empty: the whole county), or ``lookup_only`` (coordinate lookups and nothing else)."""

    codes: tuple[str, ...] = ()
    lookup_only: bool = False

    @property
    def whole(self) -> bool:
        """The whole county: nothing is out of scope."""
        return not self.codes and not self.lookup_only

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> Scope:
        """A scope from ``CODE[,CODE]`` (or a list of codes, as stored); empty or None is the
        whole county, ``lookup`` the lookup-only scope. Shapes are checked, not existence (``check``)."""
        items = text.split(",") if isinstance(text, str) else list(text or ())
        codes = tuple(dict.fromkeys(c.strip() for c in items if c and c.strip()))
        if LOOKUP in codes:
            if len(codes) > 1:
                raise ScopeError(LOOKUP, "cannot be combined with area codes")
            return cls(lookup_only=True)
        for code in codes:
            layer = code_layer(code)
            if layer is None or layer not in SCOPE_LAYERS:
                raise ScopeError(code, f"is not a code of a {', '.join(SCOPE_LAYERS)}")
        # A code inside another of the scope's codes adds nothing.
        kept = tuple(c for c in codes if not any(c != o and c.startswith(o) for o in codes))
        return cls(codes=kept)

    def stored(self) -> list[str]:
        """The form kept in ``accounts.scope`` (what ``parse`` reads back)."""
        return [LOOKUP] if self.lookup_only else list(self.codes)

    def label(self) -> str:
        return LOOKUP if self.lookup_only else (",".join(self.codes) or "county")

    def contains(self, code: str | None) -> bool:
        """Whether the unit ``code`` (or a row assigned to it) is inside the scope."""
        if self.whole:
            return True
        return code is not None and any(code.startswith(c) for c in self.codes)

    def shows(self, code: str) -> bool:
        """Whether a map shows the unit ``code``: inside the scope, or one of the scope's own
        ancestors (its town and the county outline give context)."""
        return self.contains(code) or any(c.startswith(code) for c in self.codes)

    def contains_any(self, codes: Iterable[str | None]) -> bool:
        """Whether a row assigned to these units (its town, village, grid, ... codes) is inside."""
        return self.whole or any(self.contains(c) for c in codes)

    def covers(self, other: Scope) -> bool:
        """Whether everything ``other`` sees is inside this scope."""
        if self.whole:
            return True
        if other.lookup_only:
            return False
        return not other.whole and all(self.contains(c) for c in other.codes)

    def check(self, conn: Conn) -> Scope:
        """This scope, after making sure each code is a unit of its layer in the boundaries in force
        (ScopeError naming the first that is not)."""
        if not self.codes:
            return self
        from gis.core.counties import configured

        counties = configured()
        for code in self.codes:
            if code[:6] not in counties:
                raise ScopeError(
                    code, f"is not in a county of this deployment ({', '.join(counties)}; see GRIDMAP_COUNTIES)"
                )
        # A county is checked against the configuration; its outline need not be stored.
        units = [c for c in self.codes if code_layer(c) != "county"]
        if not units:
            return self
        generation = current_generation(conn)
        rows = conn.execute(
            sa.text(f"SELECT layer, code FROM areas WHERE code = ANY(:codes) AND {IN_GENERATION}"),  # noqa: S608
            {"codes": units, "g": generation},
        ).all()
        found = {(r.layer, r.code) for r in rows}
        for code in units:
            if (code_layer(code), code) not in found:
                raise ScopeError(code, f"is not a {code_layer(code)} in the boundaries in force")
        return self

    def where(
        self, alias: str = "", *, prefix: str = "scope_", layers: Sequence[str] = SCOPE_LAYERS
    ) -> tuple[str, dict[str, Any]]:
        """A SQL condition (and its parameters) keeping rows inside the scope, for tables whose rows
        carry ``<layer>_code`` columns (incidents, buildings, addresses, hazards). Each code is
        matched by equality on its own layer's column (``town_code = :scope_town``, or ``= ANY``
        for several codes of a layer), so the layer columns' indexes serve it; a plain equality also
        lets an index on (town_code, reported_at) give a listing its order, where ``= ANY`` of one
        code does not. ``TRUE`` for the whole county, ``FALSE`` for lookup-only.
        ``layers`` lists the columns the table has: a code of another layer matches nothing."""
        if self.whole:
            return "TRUE", {}
        a = f"{alias}." if alias else ""
        by_layer: dict[str, list[str]] = {}
        for code in self.codes:
            layer = code_layer(code)
            if layer is not None:
                by_layer.setdefault(layer, []).append(code)
        conds: list[str] = []
        params: dict[str, Any] = {}
        for layer, codes in by_layer.items():
            if layer in layers:
                if len(codes) == 1:
                    conds.append(f"{a}{layer}_code = :{prefix}{layer}")
                    params[f"{prefix}{layer}"] = codes[0]
                else:
                    conds.append(f"{a}{layer}_code = ANY(:{prefix}{layer})")
                    params[f"{prefix}{layer}"] = codes
        if not conds:
            return "FALSE", {}
        return ("(" + " OR ".join(conds) + ")" if len(conds) > 1 else conds[0]), params

    def code_where(self, column: str, *, prefix: str = "scope_") -> tuple[str, dict[str, Any]]:
        """A SQL condition keeping rows whose area code ``column`` is inside the scope (prefix test;
        for tables of units, such as areas or per-grid figures): TRUE / FALSE as in ``where``."""
        if self.whole:
            return "TRUE", {}
        if self.lookup_only:
            return "FALSE", {}
        patterns = [c.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for c in self.codes]
        return f"{column} LIKE ANY(:{prefix}like)", {f"{prefix}like": patterns}


WHOLE_COUNTY = Scope()
