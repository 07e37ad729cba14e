"""The SQL predicates every reader composes: one text for "valid in this generation", "open",
"pending", "overdue" and "escalated" (their meanings are in ``gis.core.vocab``).

Each function takes the table alias (``""`` for none) and returns a parenthesised SQL fragment.
Status sets are written in as literals from the vocabulary: they are constants of the code, not
input, and a literal list lets the planner match the partial index on open incidents (migration
0009), which a bound array in a generic plan cannot. Times and generations are bound parameters,
named by the caller (``now=None`` means the statement's ``now()``).
"""

from __future__ import annotations

from collections.abc import Iterable

from gis.core.vocab import DONE_STATUSES, NOT_ESCALATED, OPEN_STATUSES, PENDING_STATUSES


def _col(alias: str, column: str) -> str:
    return f"{alias}.{column}" if alias else column


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def in_generation(alias: str = "", param: str = "g") -> str:
    """The area row is valid in generation ``:param`` (from it, until it is replaced)."""
    gen_to = _col(alias, "gen_to")
    return f"({_col(alias, 'gen_from')} <= :{param} AND ({gen_to} IS NULL OR {gen_to} > :{param}))"


def is_current(alias: str = "") -> str:
    """The area row is in the newest generation it belongs to (not replaced yet): the boundaries
    in force, for readers that do not ask for a moment."""
    return f"({_col(alias, 'gen_to')} IS NULL)"


def _now(now: str | None) -> str:
    return f"CAST(:{now} AS timestamptz)" if now else "now()"


def is_open(alias: str = "") -> str:
    """Not final (closed, rejected)."""
    return f"({_col(alias, 'status')} IN ({_in(OPEN_STATUSES)}))"


def is_pending(alias: str = "") -> str:
    """Waiting for handling: reported, accepted, dispatched, in_progress."""
    return f"({_col(alias, 'status')} IN ({_in(PENDING_STATUSES)}))"


def is_done(alias: str = "") -> str:
    """Handled, verified or closed: the handler's part is done."""
    return f"({_col(alias, 'status')} IN ({_in(DONE_STATUSES)}))"


def is_overdue(alias: str = "", now: str | None = None) -> str:
    """Pending and past the deadline at ``:now`` (the statement's ``now()`` when None)."""
    return f"({is_pending(alias)} AND {_col(alias, 'deadline_at')} < {_now(now)})"


def is_escalated(alias: str = "") -> str:
    """Escalated above the grid at least once (its own marker on maps; not "overdue")."""
    return f"({_col(alias, 'escalation_level')} <> '{NOT_ESCALATED}')"


def is_open_escalated(alias: str = "") -> str:
    """Open and escalated: what every "escalated" count and the maps' escalated marker show."""
    return f"({is_open(alias)} AND {is_escalated(alias)})"


# The current backlog every output reports, under these names: open, pending, overdue, escalated.
BACKLOG = ("open", "pending", "overdue", "escalated")


def backlog_counts(alias: str = "", now: str | None = None) -> str:
    """SELECT-list items counting the backlog (``count(*) FILTER (...) AS open``, ...), in ``BACKLOG`` order."""
    tests = (is_open(alias), is_pending(alias), is_overdue(alias, now), is_open_escalated(alias))
    return ", ".join(f"count(*) FILTER (WHERE {test}) AS {name}" for name, test in zip(BACKLOG, tests, strict=True))
