"""A police beat (警格) with the grids it overlaps: beats are drawn by the police and do not follow
grid edges, so the page lists each grid with the share of it that lies inside the beat."""

from __future__ import annotations

import html

import folium

from gis.outputs import mapdata
from gis.outputs.mapdata import IncidentFilter
from gis.spatial.areas import Conn
from maps import layers as ml
from maps.i18n import label
from maps.page import PageContext

PATH = "/maps/beats/{code}"


def build(conn: Conn, ctx: PageContext, code: str, flt: IncidentFilter) -> folium.Map | None:
    """The page of beat ``code``, or None when no beat in force has that code."""
    lang = ctx.lang
    crs = ctx.display_crs
    beat = mapdata.layer_geojson(conn, "beat", codes=[code], display_crs=crs, cache=ctx.layer_cache)
    if not beat["features"]:
        return None
    props = beat["features"][0]["properties"]
    overlaps = mapdata.overlapping_areas(conn, "beat", code, "grid")
    shares = {o["code"]: o["share"] for o in overlaps}
    grids = mapdata.layer_geojson(conn, "grid", codes=list(shares), display_crs=crs, cache=ctx.layer_cache)
    # Grids wholly inside the beat are filled stronger than those it only clips.
    features = [
        {
            **f,
            "properties": {
                **f["properties"],
                "share": shares[f["properties"]["code"]],
                "style": {"fillOpacity": 0.05 + 0.3 * shares[f["properties"]["code"]]},
            },
        }
        for f in grids["features"]
    ]
    m = ml.base_map(ctx, mapdata.area_bounds(conn, "beat", code), width="60%")
    ml.setup(m, ctx, links={} if ctx.standalone else {"grid": ctx.url("/maps/grids/{code}")})
    station = mapdata.layer_geojson(
        conn,
        "station",
        codes=[props["parent_code"]] if props.get("parent_code") else [],
        display_crs=crs,
        cache=ctx.layer_cache,
    )
    for key, data in (
        ("station", station),
        ("grids_overlapping", {"type": "FeatureCollection", "features": features}),
        ("beat", beat),
    ):
        kind = "grid" if key == "grids_overlapping" else key
        group = folium.FeatureGroup(name=label(f"layer.{key}", lang)).add_to(m)
        ml.fill(m, key, group, f"gridmap.builders.areas({ml.js_data(kind)})", data=data)
    in_beat = mapdata.count_in_area(conn, flt, "beat_code", code)
    stats = mapdata.grid_stats(conn, flt, codes=list(shares), now=ctx.at, role=ctx.role)
    form = ml.filter_form(
        ctx, PATH.format(code=code), label("title.beat", lang), flt, mapdata.incident_choices(), panel=False
    )
    ml.add_html(m, f'<div class="gm-panel gm-side">{form}{_table(ctx, props, station, overlaps, stats, in_beat)}</div>')
    items = ml.area_legend(lang, ("station", "beat", "grid"))
    ml.add_html(
        m,
        ml.legend(ctx, items).replace(
            'class="gm-panel gm-legend"', 'class="gm-panel gm-legend" style="right:calc(40% + 10px)"'
        ),
    )
    return m


def _table(
    ctx: PageContext,
    props: dict[str, object],
    station: dict[str, object],
    overlaps: list[dict[str, object]],
    stats: dict[str, dict[str, object]],
    in_beat: int,
) -> str:
    lang = ctx.lang
    esc = html.escape
    station_features = station.get("features") or []
    station_name = station_features[0]["properties"]["name"] if station_features else "-"  # type: ignore[index]
    head = (
        f"<h1>{esc(str(props.get('name')))} ({esc(str(props.get('code')))})</h1>"
        f"<p>{esc(label('beat.station', lang))}: {esc(str(station_name))}<br>"
        f"{esc(label('legend.incidents_total', lang, n=f'{in_beat:,}'))}</p>"
        f"<h2>{esc(label('beat.grids', lang))}</h2>"
    )
    cols = ("code", "name", "share", "households", "incidents", "overdue")
    header = "".join(f"<th>{esc(label('f.' + c, lang))}</th>" for c in cols)
    body = []
    for o in overlaps:
        s = stats.get(str(o["code"]), {})
        share = float(o["share"])  # type: ignore[arg-type]
        cells = [
            o["code"],
            o["name"],
            f"{share:.0%}",
            o["households"] or "-",
            s.get("incidents", 0),
            s.get("overdue", 0),
        ]
        body.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    return f"{head}<table><tr>{header}</tr>{''.join(body)}</table>"
