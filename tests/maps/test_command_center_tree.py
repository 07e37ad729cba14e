"""The command centre's layer tree starts folded: open, it covered the legend on a laptop screen
(1366x768). The control shows as an icon (opened on hover or tap), its groups other than the
incident layers are folded, and the legend scrolls below the icon instead of running off the top."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from folium.plugins import TreeLayerControl
from sqlalchemy.engine import Connection

from gis.outputs import mapdata
from maps import command_center
from maps.i18n import label
from maps.page import PageContext
from maps.standalone import build_html

CSS = Path(command_center.__file__).parent / "assets" / "gridmap" / "gridmap-maps.css"
# The control's options: the third argument of L.control.layers.tree(base, overlays, options).
OPTIONS = re.compile(r"L\.control\.layers\.tree\(.*,\s*(\{[^{}]*\})\s*\)\s*\.addTo\(", re.S)


def _options(html: str) -> dict[str, Any]:
    found = OPTIONS.search(html)
    assert found is not None, "no layer tree on the page"
    # folium writes the options as a JS object literal with trailing commas; JSON without them.
    return dict(json.loads(re.sub(r",\s*}", "}", found.group(1))))


@pytest.mark.parametrize("standalone", [False, True])
def test_layer_tree_starts_folded(mini_county: Any, connection: Connection, standalone: bool) -> None:
    ctx = PageContext(standalone=standalone, role="viewer")
    html = build_html(connection, "command-center", ctx, mapdata.parse_filter("7d"))
    assert _options(html)["collapsed"] is True


def test_only_the_incident_group_opens_with_the_control(mini_county: Any, connection: Connection) -> None:
    ctx = PageContext(role="viewer")
    m = command_center.build(connection, ctx, mapdata.parse_filter("7d"))
    trees = [c for c in m._children.values() if isinstance(c, TreeLayerControl)]
    assert len(trees) == 1
    groups = trees[0].overlay_tree
    assert isinstance(groups, list) and len(groups) >= 5
    folded = {g["label"]: bool(g.get("collapsed")) for g in groups}
    incidents = label("tree.incidents", "zh")
    assert folded.pop(incidents) is False  # the layers most used stay one hover away
    assert all(folded.values()), folded
    assert {label(f"tree.{k}", "zh") for k in ("boundaries", "police", "buildings", "hazards")} <= set(folded)


def test_legend_scrolls_below_the_folded_control() -> None:
    rule = re.search(r"\.gm-legend\s*\{([^}]*)\}", CSS.read_text(encoding="utf-8"))
    assert rule is not None
    body = rule.group(1)
    assert re.search(r"max-height:\s*calc\(100vh\s*-\s*\d+px\)", body), body
    assert "overflow-y: auto" in body
