"""Name lists shown in the commands' help texts.

Copies, because the modules that own them (gis.outputs.exportquery, gis.bulk, gis.spatial.verify) take a second or
more to import, and help texts are needed to register the commands at every start;
tests/api/test_cli_startup.py checks that they match the originals.
"""

from __future__ import annotations

EXPORT_LAYERS = (
    "counties",
    "towns",
    "villages",
    "grids",
    "micro_grids",
    "stations",
    "beats",
    "buildings",
    "addresses",
    "hazards",
    "incidents",
)  # fmt: skip  (gis.outputs.exportquery.LAYER_NAMES)
IMPORT_KINDS = ("incidents", "buildings", "addresses", "hazards")  # gis.bulk.SPECS
POINT_TABLES = ("incidents", "buildings", "addresses", "hazards")  # gis.spatial.verify.POINT_TABLES
