"""Scoring a month: each indicator's raw value (gis.assessment.indicators) normalised by the scheme's
rule (gis.assessment.scheme.normalise), the weighted mean of the scores there are as the base
score, plus the month's manual adjustments (gis.assessment.adjustments) as the total, and the
rank by total: equal totals share a rank and the next rank skips (1, 2, 2, 4), people or grids
without any score are not ranked."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from gis.people.scope import Scope
from gis.spatial.areas import Conn

from . import adjustments as adj
from . import indicators as ind
from .scheme import (
    BY_NAME,
    LEVELS,
    AssessmentInputError,
    AssessmentNotFound,
    county_code,
    normalise,
    parse_month,
    scheme_for,
)
from .subjects import check_subject, subjects

SORTS = ("rank", "name", "key")


def rule_text(item: dict[str, Any]) -> str:
    target, floor = item["target"], item["floor"]
    better, beyond = ("higher", "above") if target > floor else ("lower", "below")
    return f"{better} is better: 100 at {target:g} or {beyond}, 0 at {floor:g}, linear between"


def rank(totals: dict[str, float | None]) -> dict[str, int | None]:
    """Competition ranking by total, highest first: ties share the rank; no total, no rank."""
    scored = sorted((t for t in totals.values() if t is not None), reverse=True)
    first: dict[float, int] = {}
    for i, t in enumerate(scored):
        first.setdefault(t, i + 1)
    return {k: (first[t] if t is not None else None) for k, t in totals.items()}


def _row(key: str, who: dict[str, Any], scheme: dict[str, Any], raws: dict[str, ind.Values],
         adjusted: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    items = []
    weighted = weights = 0.0
    for spec in scheme["indicators"]:
        name = spec["name"]
        raw = raws[name].get(key) or (ind.Raw(0.0) if name in ind.COUNTS else ind.Raw(None))
        score = normalise(raw.value, spec["target"], spec["floor"])
        if score is not None:
            weighted += score * spec["weight"]
            weights += spec["weight"]
        items.append({
            "name": name, "label": BY_NAME[name].label, "unit": BY_NAME[name].unit, "raw": raw.value,
            "numerator": raw.numerator, "denominator": raw.denominator, "score": score, "weight": spec["weight"],
        })  # fmt: skip
    base = round(weighted / weights, 2) if weights else None
    points = round(sum(a["points"] for a in adjusted), 2)
    total = None if base is None else round(base + points, 2)
    return {"key": key, "name": who["name"], "areas": who["areas"], "indicators": items, "base_score": base,
            "adjustment_points": points, "adjustments": adjusted, "total": total}  # fmt: skip


def assess(
    conn: Conn,
    period: str,
    level: str,
    scope: Scope,
    *,
    area: str | None = None,
    org: str | None = None,
    key: str | None = None,
    role: str | None = None,
    sort: str = "rank",
    quota: int = 10,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The month's assessment of the people or grids inside ``scope`` (narrowed by ``area`` and
    ``org``, people by posting ``role``; ``key`` keeps one, ranked among the others)."""
    now = now or dt.datetime.now(dt.UTC)
    month = parse_month(period)
    if level not in LEVELS:
        raise AssessmentInputError("level", level, f"is not one of {', '.join(LEVELS)}")
    county = county_code(conn)
    scheme = scheme_for(conn, county, month)
    scheme_sorts = (*SORTS, *(i["name"] for i in scheme["indicators"]))
    if sort.lstrip("-") not in scheme_sorts:
        raise AssessmentInputError("sort", sort, f"is not one of {', '.join(scheme_sorts)} (- before it: reversed)")
    if key is not None:
        key = check_subject(conn, level, key, scope)
    who = subjects(conn, level, month, scope, area, org, role)
    if key is not None and key not in who:
        raise AssessmentNotFound("key", key)  # not posted in the month, or not selected by the other filters
    raws = ind.compute(conn, level, month, [i["name"] for i in scheme["indicators"]], quota, now)
    adjusted = adj.for_month(conn, county, month, level)
    rows = [_row(k, w, scheme, raws, adjusted.get(k, [])) for k, w in who.items()]
    ranks = rank({r["key"]: r["total"] for r in rows})
    for r in rows:
        r["rank"] = ranks[r["key"]]
    _sort(rows, sort)
    if key is not None:
        rows = [r for r in rows if r["key"] == key]
    return {
        "period": month.strftime("%Y-%m"),
        "level": level,
        "county": county,
        "quota": quota,
        "scheme": {k: scheme[k] for k in ("id", "year", "version", "max_adjustment", "note", "created_at")},
        "indicators": [
            {
                **spec,
                "label": BY_NAME[spec["name"]].label,
                "unit": BY_NAME[spec["name"]].unit,
                "definition": BY_NAME[spec["name"]].definition,
                "rule": rule_text(spec),
            }
            for spec in scheme["indicators"]
        ],  # fmt: skip
        "rows": rows,
    }


def _sort(rows: list[dict[str, Any]], sort: str) -> None:
    field, reverse = sort.lstrip("-"), sort.startswith("-")
    if field == "rank":
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["key"]), reverse=False)
        if reverse:
            rows.reverse()
    elif field in ("name", "key"):
        rows.sort(key=lambda r: (str(r[field] or ""), r["key"]), reverse=reverse)
    else:  # an indicator: by its score, best first

        def score(r: dict[str, Any]) -> float:
            s = next(i["score"] for i in r["indicators"] if i["name"] == field)
            return -1.0 if s is None else float(s)

        rows.sort(key=lambda r: (-score(r), r["key"]))
        if reverse:
            rows.reverse()


def write_xlsx(data: dict[str, Any]) -> bytes:
    """The assessment as a workbook: one row per person or grid (rank, total, each indicator's raw
    value, score and weight), then the indicators' rules and the adjustments."""
    import pandas as pd

    table = []
    for r in data["rows"]:
        row: dict[str, Any] = {"rank": r["rank"], "key": r["key"], "name": r["name"]}
        for i in r["indicators"]:
            row[f"{i['name']} raw"] = i["raw"]
            row[f"{i['name']} score"] = i["score"]
            row[f"{i['name']} weight"] = i["weight"]
        row |= {"base_score": r["base_score"], "adjustment_points": r["adjustment_points"], "total": r["total"]}
        table.append(row)
    rules = pd.DataFrame([
        {"indicator": i["name"], "label": i["label"], "unit": i["unit"], "weight": i["weight"], "target": i["target"],
         "floor": i["floor"], "rule": i["rule"], "definition": i["definition"]} for i in data["indicators"]
    ])  # fmt: skip
    adjustments = pd.DataFrame(
        [{"key": r["key"], "points": a["points"], "reason": a["reason"], "actor": a["actor"],
          "at": a["at"].isoformat()} for r in data["rows"] for a in r["adjustments"]],
        columns=["key", "points", "reason", "actor", "at"],
    )  # fmt: skip
    scheme = data["scheme"]
    about = pd.DataFrame([{
        "period": data["period"], "level": data["level"], "county": data["county"], "scheme_year": scheme["year"],
        "scheme_version": scheme["version"], "quota": data["quota"],
    }])  # fmt: skip
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame(table, columns=None if table else ["rank", "key", "name", "total"]).to_excel(
            writer, sheet_name="考核 scores", index=False
        )
        rules.to_excel(writer, sheet_name="口径 indicators", index=False)
        adjustments.to_excel(writer, sheet_name="调整 adjustments", index=False)
        about.to_excel(writer, sheet_name="方案 scheme", index=False)
    return buffer.getvalue()
