"""Manual adjustments of an assessment (加减分): points added to a person's or a grid's total for a
month, with a reason and the actor, written to the audit log. The points are bounded by the
scheme's ``max_adjustment``: each adjustment, and the sum of a person's or grid's adjustments in a
month, lie within ±max_adjustment."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa

from gis.core import audit
from gis.people.scope import Scope
from gis.spatial.areas import Conn

from .scheme import LEVELS, AssessmentInputError, county_code, parse_month, scheme_for
from .subjects import check_subject

MAX_REASON = 2000


def for_month(conn: Conn, county: str, month: dt.date, level: str) -> dict[str, list[dict[str, Any]]]:
    """The adjustments of a month and level, per subject, oldest first."""
    rows = conn.execute(
        sa.text(
            "SELECT a.id, a.subject, a.points, a.reason, a.actor, a.at, a.scheme_id, s.version AS scheme_version "
            "FROM assessment_adjustments a LEFT JOIN assessment_schemes s ON s.id = a.scheme_id "
            "WHERE a.county_code = :c AND a.month = :m AND a.level = :l ORDER BY a.at, a.id"
        ),
        {"c": county, "m": month, "l": level},
    ).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        entry = {**r._mapping, "points": float(r.points), "scheme_version": r.scheme_version or 0}
        out.setdefault(r.subject, []).append(entry)
    return out


def adjust(conn: Conn, data: dict[str, Any], actor: str, scope: Scope) -> dict[str, Any]:
    """Record an adjustment: ``period`` (YYYY-MM), ``level`` (person, grid), ``key`` (a person id or a
    grid code inside ``scope``; outside it is not found), ``points`` and ``reason``."""
    extra = sorted(set(data) - {"period", "level", "key", "points", "reason"})
    if extra:
        raise AssessmentInputError(extra[0], data[extra[0]], "is not a field of an adjustment")
    month = parse_month(data.get("period"))
    level = data.get("level")
    if level not in LEVELS:
        raise AssessmentInputError("level", level, f"is not one of {', '.join(LEVELS)}")
    points = data.get("points")
    if isinstance(points, bool) or not isinstance(points, int | float) or not math.isfinite(points) or points == 0:
        raise AssessmentInputError("points", points, "is not a non-zero number")
    points = round(float(points), 2)  # kept to the hundredth (numeric(5, 2))
    if points == 0:
        raise AssessmentInputError("points", data.get("points"), "rounds to 0 (points are kept to the hundredth)")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise AssessmentInputError("reason", reason, "is required: say why the score is adjusted")
    if len(reason) > MAX_REASON:
        raise AssessmentInputError("reason", reason, f"is {len(reason)} characters long; at most {MAX_REASON}")
    key = check_subject(conn, level, data.get("key"), scope)
    county = county_code(conn)
    scheme = scheme_for(conn, county, month)
    bound = scheme["max_adjustment"]
    if abs(points) > bound:
        raise AssessmentInputError("points", points, f"is outside ±{bound:g} (the scheme's max_adjustment)")
    # Serialise adjustments of one subject and month, so the bound on their sum holds.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('assessment_adj:' || :k))"),
                 {"k": f"{county}:{month}:{level}:{key}"})  # fmt: skip
    before = conn.execute(
        sa.text("SELECT coalesce(sum(points), 0) FROM assessment_adjustments WHERE county_code = :c AND month = :m "
                "AND level = :l AND subject = :k"),
        {"c": county, "m": month, "l": level, "k": key},
    ).scalar_one()  # fmt: skip
    if abs(float(before) + points) > bound + 1e-9:
        raise AssessmentInputError(
            "points", points, f"would bring this month's adjustments to {float(before) + points:g}, outside ±{bound:g}"
        )
    row = conn.execute(
        sa.text(
            "INSERT INTO assessment_adjustments (county_code, month, level, subject, scheme_id, points, reason, actor) "
            "VALUES (:c, :m, :l, :k, :s, :p, :r, :a) RETURNING id, at"
        ),
        {"c": county, "m": month, "l": level, "k": key, "s": scheme["id"], "p": points, "r": reason.strip(),
         "a": actor},
    ).one()  # fmt: skip
    period = month.strftime("%Y-%m")
    audit.record(conn, actor, "assessment.adjust", f"assessment/{level}/{key}/{period}", adjustment=row.id,
                 points=points, reason=reason.strip(), scheme_version=scheme["version"])  # fmt: skip
    return {
        "id": int(row.id),
        "period": period,
        "level": level,
        "key": key,
        "points": float(points),
        "reason": reason.strip(),
        "actor": actor,
        "at": row.at,
        "scheme_version": scheme["version"],
        "month_total_points": float(before) + points,
    }
