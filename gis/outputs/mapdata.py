"""The data behind the command-centre maps: boundary layers, incident heat, buildings, hazards.

Every function returns plain Python (GeoJSON dicts, lists of ``[lat, lon, weight]``) so that the
folium page builders, the JSON endpoints the pages poll and the CLI share one code path.

Two concerns shape it:

* **Size.** folium writes every point into the page. Above a threshold the heat is aggregated on
  the server into weighted cells of a fine square grid (100 m); each cell sits at the mean
  position of its incidents. Leaflet.heat itself sums weights into screen cells of ``radius/2``
  pixels (about 300 m at county zoom), so cells of 100 m paint the same picture as raw points.
  Boundaries are simplified as a coverage (shared edges stay shared) and rounded to ~1 m.
* **Display datum.** Overlays are stored in WGS-84; for GCJ-02 base maps (Amap tiles) every
  coordinate is shifted on the way out (``display_crs="gcj02"``), never in the database."""

from gis.incidents.filter import IncidentFilter
from gis.outputs.features import check_display_crs
from gis.outputs.gridstats import grid_stats, weekly_trend
from gis.outputs.heat import HeatData, count_in_area, heat_data, heat_frames
from gis.outputs.mapfilter import WINDOWS, MapQueryError, parse_filter, with_window
from gis.outputs.maplayers import LayerCache, area_bounds, layer_bounds, layer_geojson, overlapping_areas
from gis.outputs.mappoints import (
    FLAGS,
    count_flagged,
    flagged_incidents,
    hazard_categories,
    hazard_points,
    incident_choices,
    recent_incidents,
    rental_buildings,
)

__all__ = [
    "HeatData",
    "IncidentFilter",
    "LayerCache",
    "MapQueryError",
    "WINDOWS",
    "area_bounds",
    "check_display_crs",
    "count_in_area",
    "FLAGS",
    "count_flagged",
    "flagged_incidents",
    "grid_stats",
    "hazard_categories",
    "hazard_points",
    "heat_data",
    "heat_frames",
    "incident_choices",
    "layer_bounds",
    "layer_geojson",
    "overlapping_areas",
    "parse_filter",
    "recent_incidents",
    "rental_buildings",
    "weekly_trend",
    "with_window",
]
