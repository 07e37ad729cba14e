"""Which boundary generation a point row is assigned under: one rule for every writer and checker.

* **Open work belongs to the generation in force** (at the transaction's ``now()``): that is the
  boundary under which it will be handled, and by whom. An incident reported two days back but
  still open goes to today's grid; when a later publish moves its point, publishing moves it
  (gis/spatial/reassign.py).
* **Closed records keep the generation in force at their time**, so history stays true. A record's
  time is when it ended if that is known (``closed_at``, ``rectified_at``), else when it began
  (``reported_at``, ``found_at``). A record that ends in the system keeps the assignment it had
  while open, which is the generation in force when it ended; publishing leaves it alone.

"Open" per table (the statuses come from gis/core/vocab.py): incidents whose status is not
``closed`` or ``rejected``; hazards that are not ``rectified``. Buildings and addresses have no
status: they are always current and follow the generation in force.

The users of the rule: the row trigger (gis/sql/assign.sql, through the SQL function
``gridmap_final_statuses`` that :func:`final_statuses_function_sql` generates from the vocabulary,
installed by migration 0010), the bulk importer (:func:`rule_times`), publish and restore
(:func:`open_rows_sql` picks the rows they reassign), ``gridmap verify`` (:func:`is_final`,
:func:`rule_times`) and dispatch routing (:func:`generations_for_rows`).

Only the vocabulary is imported at module level: the migration imports this module.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gis.core.vocab import FINAL_STATUSES, HAZARD_FINAL_STATUSES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from gis.spatial.areas import Conn

POINT_TABLES = ("incidents", "buildings", "addresses", "hazards")


@dataclass(frozen=True)
class Lifecycle:
    """How a table's rows end: the status column, its final values, and the record's time columns
    (the first one set is the time of a final record)."""

    status_column: str
    final_statuses: tuple[str, ...]
    time_columns: tuple[str, ...]


# Tables not listed here have no lifecycle: every row is open work. The trigger in
# gis/sql/assign.sql names the same time columns (tests/gis/test_genrule.py checks the pairing).
LIFECYCLES: dict[str, Lifecycle] = {
    "incidents": Lifecycle("status", FINAL_STATUSES, ("closed_at", "reported_at")),
    "hazards": Lifecycle("status", HAZARD_FINAL_STATUSES, ("rectified_at", "found_at")),
}

_WORD = re.compile(r"^[a-z_]+$")


def _quoted(values: tuple[str, ...]) -> str:
    # Only vocabulary constants are formatted into SQL; refuse anything that is not a plain word.
    for v in values:
        if not _WORD.match(v):
            raise ValueError(f"{v!r} is not a plain status word")
    return ", ".join(f"'{v}'" for v in values)


def _check(table: str) -> None:
    if table not in POINT_TABLES:
        raise ValueError(f"{table!r} is not a point table; use one of {', '.join(POINT_TABLES)}")


def open_rows_sql(table: str, alias: str | None = "t") -> str:
    """The SQL condition true for the rows of ``table`` that follow the generation in force."""
    _check(table)
    life = LIFECYCLES.get(table)
    if life is None:
        return "TRUE"
    column = f"{alias}.{life.status_column}" if alias else life.status_column
    return f"{column} NOT IN ({_quoted(life.final_statuses)})"


def final_time_sql(table: str, alias: str | None = "t") -> str:
    """SQL for the time of a row that has ended (``now()`` for tables without a lifecycle)."""
    _check(table)
    life = LIFECYCLES.get(table)
    if life is None:
        return "now()"
    prefix = f"{alias}." if alias else ""
    return f"coalesce({', '.join(prefix + c for c in life.time_columns)})"


def final_statuses_function_sql() -> str:
    """``CREATE OR REPLACE FUNCTION gridmap_final_statuses(tbl text)``: the final statuses of each
    table as a text array (empty for tables without a lifecycle), written from LIFECYCLES.

    It is IMMUTABLE and a single expression, so PostgreSQL inlines and folds it where the trigger
    calls it with a constant table name: the per-row cost is one array comparison, no query."""
    cases = " ".join(
        f"WHEN '{table}' THEN ARRAY[{_quoted(life.final_statuses)}]::text[]" for table, life in LIFECYCLES.items()
    )
    return (
        "CREATE OR REPLACE FUNCTION gridmap_final_statuses(tbl text) RETURNS text[] "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS "
        f"$$ SELECT CASE tbl {cases} ELSE ARRAY[]::text[] END $$"
    )


def is_final(table: str, statuses: npt.ArrayLike | None) -> npt.NDArray[np.bool_]:
    """Per row: has it ended (it keeps the generation of its time)? All False without a lifecycle."""
    import numpy as np

    _check(table)
    values = np.asarray([] if statuses is None else statuses, dtype=object)
    life = LIFECYCLES.get(table)
    if life is None:
        return np.zeros(len(values), dtype=bool)
    return np.isin(values, np.asarray(life.final_statuses, dtype=object))


def rule_times(table: str, frame: pd.DataFrame, now: dt.datetime | None = None) -> pd.Series | None:
    """The time whose generation each row of ``frame`` is assigned under: ``now`` for open work,
    the record's time for ended records. None when every row is open work (all at ``now``).

    ``frame`` holds the table's status and time columns (missing time columns count as unset)."""
    import pandas as pd

    _check(table)
    life = LIFECYCLES.get(table)
    if life is None or life.status_column not in frame:
        return None
    final = is_final(table, frame[life.status_column].to_numpy(dtype=object))
    if not final.any():
        return None
    stamp = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    own = pd.Series(pd.NaT, index=range(len(frame)), dtype="datetime64[us, UTC]")
    for column in reversed(life.time_columns):
        if column in frame:
            values = pd.to_datetime(frame[column].reset_index(drop=True), utc=True).astype("datetime64[us, UTC]")
            own = values.where(values.notna(), own)
    # A final record with no time at all is dated now, as the trigger's coalesce would leave it NULL
    # and gridmap_generation_at(NULL) means now.
    own = own.where(own.notna(), stamp)
    out = pd.Series(stamp, index=range(len(frame)), dtype="datetime64[us, UTC]")
    return out.where(~final, own)


def generations_for_rows(conn: Conn, table: str, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """The generation each row of ``frame`` is assigned under by the rule; -1 where none is published."""
    from gis.spatial.assign import generations_for_times

    return generations_for_times(conn, rule_times(table, frame), len(frame))
