"""The boundary editor page: a folium map with Leaflet-Geoman where planners reshape a draft.

Folium renders the page once; everything live happens in the browser, against the API:
the page fetches the draft's polygons and validation findings, lets the planner move vertices
(with snapping), cut, remove, split along a drawn line and merge selected polygons, and saves
with ``PUT /boundaries/drafts/{id}/features``. Browsers send no headers when navigating, so the
page is opened with ``?key=`` and passes the key on as ``X-API-Key``.
"""

from __future__ import annotations

import json
from typing import Any

import folium
from branca.element import MacroElement
from folium.plugins import GeoMan
from folium.template import Template

from maps import offline

# Jiashan's centre, used until the draft's polygons are loaded and the map zooms to them.
DEFAULT_CENTER = (30.84, 120.92)


class _EditorScript(MacroElement):
    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="gm-panel" style="position:absolute;top:10px;right:10px;z-index:1000;width:320px;max-height:90%;
             overflow:auto;background:#fff;padding:8px;font:13px sans-serif;border-radius:4px;
             box-shadow:0 1px 4px rgba(0,0,0,.3)">
          <b id="gm-title"></b>
          <div style="margin:6px 0">
            <button id="gm-save">保存 Save</button>
            <button id="gm-validate">校验 Validate</button>
            <button id="gm-split">分割 Split</button>
            <button id="gm-merge">合并 Merge</button>
          </div>
          <div id="gm-status">loading…</div>
          <ol id="gm-findings" style="padding-left:18px"></ol>
        </div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
          var map = {{ this.map_name }};
          var group = {{ this.group_name }};
          var cfg = {{ this.config }};
          var headers = {"Content-Type": "application/json"};
          if (cfg.key) { headers["X-API-Key"] = cfg.key; }
          var base = cfg.api + "/boundaries/drafts/" + cfg.draft;
          var findingsLayer = L.featureGroup([], {pmIgnore: true}).addTo(map);
          var selected = {};
          var splitting = false;
          var status = document.getElementById("gm-status");
          document.getElementById("gm-title").textContent =
            "草案 Draft " + cfg.draft + " · " + cfg.layer + (cfg.scope ? " · " + cfg.scope : "");
          map.pm.setGlobalOptions({snappable: true, snapDistance: 20, allowSelfIntersection: false});

          function say(text) { status.textContent = text; }
          function call(method, path, body) {
            return fetch(base + path, {method: method, headers: headers,
                                       body: body === undefined ? undefined : JSON.stringify(body)})
              .then(function (r) {
                return r.json().then(function (data) {
                  var detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
                  if (!r.ok) { throw new Error(detail); }
                  return data;
                });
              });
          }
          function styleFor(code) {
            return selected[code] ? {color: "#d62728", weight: 3, fillOpacity: 0.35}
                                  : {color: "#1f77b4", weight: 2, fillOpacity: 0.15};
          }
          function load() {
            return call("GET", "/features").then(function (fc) {
              group.clearLayers();
              selected = {};
              L.geoJSON(fc, {
                style: function (f) { return styleFor(f.properties.code); },
                onEachFeature: function (f, layer) {
                  layer.bindTooltip(f.properties.code + " " + (f.properties.name || ""));
                  layer.on("click", function () {
                    if (map.pm.globalEditModeEnabled() || map.pm.globalRemovalModeEnabled()) { return; }
                    var code = layer.feature.properties.code;
                    selected[code] = !selected[code];
                    layer.setStyle(styleFor(code));
                  });
                  group.addLayer(layer);
                }
              });
              if (group.getLayers().length && !cfg.fitted) { map.fitBounds(group.getBounds()); cfg.fitted = true; }
              window.gridmapEditor.loaded = group.getLayers().length;
              say(group.getLayers().length + " polygons loaded");
            });
          }
          function validate() {
            return call("GET", "/validate").then(function (report) {
              findingsLayer.clearLayers();
              var list = document.getElementById("gm-findings");
              list.innerHTML = "";
              report.findings.forEach(function (f) {
                var colour = f.severity === "error" ? "#d62728" : "#ff7f0e";
                if (f.geometry) {
                  L.geoJSON(f.geometry, {pmIgnore: true, interactive: false,
                    style: {color: colour, weight: 3, dashArray: "4 4", fillOpacity: 0.3}}).addTo(findingsLayer);
                }
                L.circleMarker([f.lat, f.lon], {pmIgnore: true, radius: 6, color: colour})
                  .bindPopup(f.severity + ": " + f.message).addTo(findingsLayer);
                var item = document.createElement("li");
                item.textContent = f.severity + " · " + f.message;
                item.style.color = colour;
                item.style.cursor = "pointer";
                item.onclick = function () { map.setView([f.lat, f.lon], Math.max(map.getZoom(), 16)); };
                list.appendChild(item);
              });
              say((report.ok ? "valid" : "not valid") + ": " + report.errors + " error(s), "
                  + report.warnings + " warning(s)");
              window.gridmapEditor.report = report;
            });
          }
          function save() {
            var features = [];
            group.eachLayer(function (layer) {
              var f = layer.toGeoJSON(15);
              if (f.geometry && (f.geometry.type === "Polygon" || f.geometry.type === "MultiPolygon")) {
                features.push(f);
              }
            });
            say("saving…");
            return call("PUT", "/features?mode=replace", {type: "FeatureCollection", features: features})
              .then(function (r) { say("saved " + r.written + " polygons"); window.gridmapEditor.saved += 1; })
              .then(load).then(validate)
              .catch(function (e) { say("save failed: " + e.message); });
          }
          // Cutting keeps the polygon's attributes on what remains of it.
          map.on("pm:cut", function (e) {
            if (e.originalLayer && e.originalLayer.feature) { e.layer.feature = e.originalLayer.feature; }
            group.addLayer(e.layer);
          });
          map.on("pm:create", function (e) {
            if (splitting && e.shape === "Line") {
              splitting = false;
              var newCode = window.prompt("新多边形编码 Code of the new polygon");
              map.removeLayer(e.layer);
              if (!newCode) { return; }
              var line = e.layer.getLatLngs().map(function (p) { return [p.lng, p.lat]; });
              call("POST", "/operations", {op: "split", line: line, new_code: newCode})
                .then(load).then(validate).catch(function (err) { say("split failed: " + err.message); });
            } else if (e.layer.feature === undefined) {
              map.removeLayer(e.layer);
              say("new polygons come from splitting; draw a line with Split");
            }
          });
          document.getElementById("gm-save").onclick = save;
          document.getElementById("gm-validate").onclick = validate;
          document.getElementById("gm-split").onclick = function () {
            splitting = true;
            map.pm.enableDraw("Line", {snappable: true});
            say("draw the cutting line across one polygon; double-click to finish");
          };
          document.getElementById("gm-merge").onclick = function () {
            var codes = Object.keys(selected).filter(function (c) { return selected[c]; });
            if (codes.length < 2) { say("click two or more neighbouring polygons first"); return; }
            call("POST", "/operations", {op: "merge", codes: codes})
              .then(load).then(validate).catch(function (err) { say("merge failed: " + err.message); });
          };
          window.gridmapEditor = {map: map, group: group, save: save, load: load, validate: validate,
                                  saved: 0, loaded: 0, report: null};
          load().then(validate).catch(function (e) { say("load failed: " + e.message); });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, map_name: str, group_name: str, config: dict[str, Any]):
        super().__init__()
        self._name = "GridmapBoundaryEditor"
        self.map_name = map_name
        self.group_name = group_name
        # Escaped so that no value can close the <script> element it is written into.
        self.config = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")


def editor_page(
    draft_id: int,
    layer: str,
    scope_code: str | None,
    *,
    api_base: str = "",
    key: str | None = None,
    tile_url: str | None = None,
    tile_attribution: str = "",
    asset_prefix: str = offline.DEFAULT_PREFIX,
) -> str:
    """The editor's HTML for one draft; scripts load from ``asset_prefix`` (served locally)."""
    offline.localize(asset_prefix)
    fmap = folium.Map(location=DEFAULT_CENTER, zoom_start=13, tiles=None, control_scale=True)
    if tile_url:
        folium.TileLayer(tile_url, attr=tile_attribution or " ", name="base").add_to(fmap)
    group = folium.FeatureGroup(name="draft").add_to(fmap)
    GeoMan(
        position="topleft",
        feature_group=group,
        drawMarker=False,
        drawCircleMarker=False,
        drawCircle=False,
        drawText=False,
        drawRectangle=False,
        drawPolygon=False,
    ).add_to(fmap)
    config = {"api": api_base.rstrip("/"), "draft": draft_id, "layer": layer, "scope": scope_code, "key": key}
    fmap.add_child(_EditorScript(fmap.get_name(), group.get_name(), config))
    root: Any = fmap.get_root()  # a branca Figure, typed as Element
    root.header.add_child(folium.Element(offline.favicon_link(asset_prefix)), name="favicon")
    return fmap.get_root().render()
