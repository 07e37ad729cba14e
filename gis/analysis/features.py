"""The analysis results as GeoJSON: the units' (simplified, cached) polygons from the map layers
with each row's figures as properties and a ``style`` (fill colour by class) that the map pages'
area builder applies; repeat locations as points."""

from __future__ import annotations

from typing import Any

from gis.outputs.maplayers import LayerCache, layer_geojson
from gis.spatial.areas import Conn

# Diverging red-blue (ColorBrewer RdBu): red hot, blue cold, the darker the more confident.
CLASS_COLORS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "not_significant": "#f7f7f7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
EMERGING_COLORS = {
    "new": "#fdae61",
    "intensifying": "#d7191c",
    "persistent": "#a50026",
    "diminishing": "#f4a582",
    "sporadic": "#fee090",
    "none": "#f7f7f7",
}


def _style(label: str, colors: dict[str, str]) -> dict[str, Any]:
    quiet = label in ("not_significant", "none")
    return {"fillColor": colors[label], "fillOpacity": 0.15 if quiet else 0.7, "weight": 0.5, "color": "#666"}


def units_geojson(
    conn: Conn,
    result: dict[str, Any],
    *,
    colors: dict[str, str] | None = None,
    cache: LayerCache | None = None,
    display_crs: str = "wgs84",
) -> dict[str, Any]:
    """A FeatureCollection of ``result["rows"]`` (hot spots or emerging) on their polygons."""
    colors = colors or (EMERGING_COLORS if "weeks" in result else CLASS_COLORS)
    layer = layer_geojson(
        conn, result["layer"], result["generation"], cache=cache, display_crs=display_crs, tolerance_m=None
    )
    shapes = {f["properties"]["code"]: f["geometry"] for f in layer["features"]}
    features = [
        {
            "type": "Feature",
            "properties": {**row, "layer": result["layer"], "style": _style(row["class"], colors)},
            "geometry": shapes.get(row["code"]),
        }
        for row in result["rows"]
    ]
    meta = {k: v for k, v in result.items() if k != "rows"}
    return {"type": "FeatureCollection", "features": features, "analysis": meta}


def repeats_geojson(result: dict[str, Any]) -> dict[str, Any]:
    features = [
        {
            "type": "Feature",
            "properties": {k: v for k, v in loc.items() if k not in ("lon", "lat")},
            "geometry": {"type": "Point", "coordinates": [loc["lon"], loc["lat"]]},
        }
        for loc in result["locations"]
    ]
    meta = {k: v for k, v in result.items() if k != "locations"}
    return {"type": "FeatureCollection", "features": features, "analysis": meta}
