/* gridmap: client code of the command-centre map pages (maps/layers.py puts it on each page).
   Defines window.gridmap only; nothing touches Leaflet until a page calls in, so the file may load
   before or after leaflet.js. Layers loaded "lazily" are fetched from the server the first time
   they are switched on, which keeps the page itself small; standalone files pass the data inline. */
(function () {
  "use strict";
  var G = (window.gridmap = window.gridmap || {});
  G.labels = {};
  G.links = {};
  G.layers = {};
  G.loaded = {};
  G.data = G.data || {};

  function t(key) {
    return Object.prototype.hasOwnProperty.call(G.labels, key) ? G.labels[key] : key.split(".").slice(1).join(".") || key;
  }
  function esc(value) {
    if (value === null || value === undefined) return "";
    return String(value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  G.t = t;
  G.esc = esc;

  G.setup = function (map, options) {
    G.map = map;
    G.labels = options.labels || {};
    G.links = options.links || {};
    if (map.attributionControl) {
      // Leaflet's default prefix links to leafletjs.com: no links off the intranet.
      map.attributionControl.setPrefix("Leaflet");
      if (options.attribution) map.attributionControl.addAttribution(options.attribution);
    }
    // Village and grid labels only when zoomed in far enough to read them.
    var container = map.getContainer();
    function zoomClass() {
      var z = map.getZoom();
      container.classList.toggle("gm-z13", z >= 13);
      container.classList.toggle("gm-z15", z >= 15);
    }
    map.on("zoomend", zoomClass);
    zoomClass();
    map.on("zoomend", bindPendingLabels);
  };

  G.register = function (key, layer) {
    G.layers[key] = layer;
    return layer;
  };

  /* ---- popups -------------------------------------------------------------------------- */

  function row(key, value) {
    if (value === null || value === undefined || value === "") return "";
    return "<tr><th>" + esc(t("f." + key)) + "</th><td>" + esc(value) + "</td></tr>";
  }
  function table(rows) {
    return '<table class="gm-popup">' + rows.join("") + "</table>";
  }
  function link(kind, code) {
    var pattern = G.links[kind];
    if (!pattern) return "";
    var href = pattern.replace("{code}", encodeURIComponent(code));
    return '<div class="gm-link"><a href="' + esc(href) + '" target="_blank">' + esc(t(kind + ".open_dashboard")) + "</a></div>";
  }
  function dateText(value) {
    return value ? String(value).replace("T", " ").slice(0, 16) : "";
  }

  G.areaPopup = function (p) {
    var rows = [row("name", p.name), row("code", p.code), row("households", p.households)];
    if (p.share !== undefined) rows.push(row("share", Math.round(p.share * 1000) / 10 + "%"));
    if (p.stats) {
      var s = p.stats;
      var staff = (s.staff || []).map(function (m) {
        return esc(t("role." + m.role)) + " " + esc(m.name) + (m.phone ? " " + esc(m.phone) : "");
      });
      rows.push("<tr><th>" + esc(t("f.staff")) + "</th><td>" + (staff.join("<br>") || "-") + "</td></tr>");
      ["incidents", "done", "open", "pending", "overdue", "escalated", "rentals", "hazards_open"].forEach(function (k) {
        rows.push(row(k, s[k] || 0));
      });
    }
    return table(rows) + (p.layer === "grid" ? link("grid", p.code) : "");
  };

  G.incidentPopup = function (p) {
    return table([
      row("category", t("category." + p.category)),
      row("status", t("status." + p.status)),
      row("source", t("source." + p.source)),
      row("reported_at", dateText(p.reported_at)),
      row("deadline_at", dateText(p.deadline_at)),
      row("escalation_level", p.escalation_level ? t("escalation." + p.escalation_level) : ""),
      row("address_text", p.address_text),
      row("reporter_name", p.reporter_name),
      row("reporter_phone", p.reporter_phone),
      row("grid_code", p.grid_code),
    ]);
  };

  G.buildingPopup = function (p) {
    return table([
      row("name", p.name || p.code),
      row("risk_level", t("risk." + (p.risk_level || "none"))),
      row("tenants", p.tenants),
      row("rooms", p.rooms),
      row("escape_window", p.escape_window ? t("inspection." + p.escape_window) : ""),
      row("ebike_charging", p.ebike_charging ? t("inspection." + p.ebike_charging) : ""),
      row("wiring", p.wiring ? t("inspection." + p.wiring) : ""),
      row("last_inspected_at", dateText(p.last_inspected_at)),
      row("landlord_name", p.landlord_name),
      row("landlord_phone", p.landlord_phone),
      row("grid_code", p.grid_code),
    ]);
  };

  G.hazardPopup = function (p) {
    return table([
      row("category", t("hazard." + p.category)),
      row("severity", t("severity." + p.severity)),
      row("status", t("hstatus." + p.status)),
      row("found_at", dateText(p.found_at)),
      row("rectify_by", dateText(p.rectify_by)),
      row("description", p.description),
      row("grid_code", p.grid_code),
    ]);
  };

  /* ---- styles --------------------------------------------------------------------------- */

  var AREA_STYLES = {
    county: { color: "#222", weight: 3, fill: false },
    town: { color: "#6a3d9a", weight: 2.4, fill: false },
    village: { color: "#1f78b4", weight: 1.4, fill: false },
    grid: { color: "#33a02c", weight: 0.9, fillColor: "#33a02c", fillOpacity: 0.03 },
    micro_grid: { color: "#8fbf7f", weight: 0.6, fill: false, dashArray: "2 3" },
    station: { color: "#e31a1c", weight: 2.4, fill: false },
    beat: { color: "#ff7f00", weight: 1.3, fill: false, dashArray: "6 4" },
  };
  G.RISK_COLORS = { high: "#d7191c", medium: "#fdae61", low: "#1a9641", none: "#888888" };
  G.INCIDENT_COLOR = "#b10026";
  G.ESCALATED_COLOR = "#6a3d9a";
  G.HAZARD_STATUS_COLORS = {
    open: "#d7191c", notified: "#f46d43", overdue: "#7b0000", rectifying: "#fdae61", submitted: "#a6d96a",
    rectified: "#1a9641",
  };

  var LABEL_LAYERS = { town: true, village: true, grid: true, beat: true };
  // Zoom below which gridmap-maps.css hides a kind's labels (see zoomClass in G.setup).
  var LABEL_MIN_ZOOM = { village: 13, grid: 15 };
  var pendingLabels = [];

  /* A permanent name label on an area. Labels that would be hidden at the current zoom are bound
     when the map first reaches their zoom: each open label costs a forced layout, and the county
     view would otherwise place ~900 invisible village and grid labels before the heat paints. */
  function areaLabel(layer, kind, name) {
    var options = { permanent: true, direction: "center", className: "gm-label gm-label-" + kind };
    var minZoom = LABEL_MIN_ZOOM[kind] || 0;
    if (!G.map || G.map.getZoom() >= minZoom) layer.bindTooltip(esc(name), options);
    else pendingLabels.push({ minZoom: minZoom, layer: layer, text: esc(name), options: options });
  }
  function bindPendingLabels() {
    if (!pendingLabels.length) return;
    var zoom = G.map.getZoom();
    pendingLabels = pendingLabels.filter(function (item) {
      if (zoom < item.minZoom) return true;
      item.layer.bindTooltip(item.text, item.options);
      return false;
    });
  }

  G.areas = function (data, kind, style) {
    var base = L.extend({}, AREA_STYLES[kind] || AREA_STYLES.grid, style || {});
    return L.geoJSON(data, {
      style: function (f) {
        return f.properties && f.properties.style ? L.extend({}, base, f.properties.style) : base;
      },
      onEachFeature: function (feature, layer) {
        var p = feature.properties || {};
        layer.bindPopup(function () {
          return G.areaPopup(p);
        });
        if (kind === "grid" && !p.stats && G.links.stats) {
          // Served pages fetch a grid's staff and counts when its popup opens.
          layer.on("popupopen", function (e) {
            if (p.stats) return;
            fetch(G.links.stats.replace("{code}", encodeURIComponent(p.code)), { credentials: "same-origin" })
              .then(function (r) {
                if (!r.ok) throw new Error("HTTP " + r.status);
                return r.json();
              })
              .then(function (all) {
                p.stats = all[p.code] || {};
                e.popup.setContent(G.areaPopup(p));
              })
              .catch(function (err) {
                console.warn("gridmap: no figures for grid " + p.code + ": " + err.message);
              });
          });
        }
        if (LABEL_LAYERS[kind] && p.name) areaLabel(layer, kind, p.name);
      },
    });
  };

  function dot(latlng, color, radius, extra) {
    return L.circleMarker(latlng, L.extend({ radius: radius, color: "#fff", weight: 1, fillColor: color, fillOpacity: 0.9 }, extra || {}));
  }

  G.incidentMarker = function (feature, latlng) {
    return dot(latlng, G.INCIDENT_COLOR, 6, { color: "#000", weight: 1.5 }).bindPopup(G.incidentPopup(feature.properties || {}));
  };
  /* Escalated (提级) incidents: a marker of their own, not the overdue one (see gis.core.vocab). */
  G.escalatedMarker = function (feature, latlng) {
    return dot(latlng, G.ESCALATED_COLOR, 6, { color: "#000", weight: 1.5 }).bindPopup(G.incidentPopup(feature.properties || {}));
  };
  G.liveMarker = function (feature, latlng) {
    var marker = dot(latlng, "#ff00aa", 8, { color: "#fff", weight: 2, className: "gm-live" });
    marker.bindPopup(G.incidentPopup(feature.properties || {}));
    return marker;
  };
  G.buildingMarker = function (feature, latlng) {
    var p = feature.properties || {};
    return dot(latlng, G.RISK_COLORS[p.risk_level] || G.RISK_COLORS.none, 5).bindPopup(function () {
      return G.buildingPopup(p);
    });
  };
  G.hazardMarker = function (feature, latlng) {
    var p = feature.properties || {};
    return dot(latlng, G.HAZARD_STATUS_COLORS[p.status] || "#555", 5, { color: "#222" }).bindPopup(function () {
      return G.hazardPopup(p);
    });
  };

  /* ---- the live push (GET /events) -------------------------------------------------------
     The live layer starts polling (Leaflet.Realtime); once the event stream is up ("ready") the
     polling stops and pushed events update the layer; when the stream errors, polling resumes
     until it is back (EventSource reconnects by itself, resuming with Last-Event-ID). With page
     filters the pushed feature may not match them, so an event triggers one filtered re-read
     instead of being drawn as it is. The ticker lists the latest events. */
  var EVENT_TYPES = ["incident.created", "incident.status", "incident.escalated", "incident.overdue"];
  G.live = { mode: "polling", received: 0, last: null };
  G.liveStream = function (realtime, url, filtered, text) {
    if (!window.EventSource || !realtime) return;
    var map = realtime._map || null;
    var box = L.DomUtil.create("div", "gm-ticker");
    box.innerHTML = '<div class="gm-ticker-title">' + esc(text.title) + ' <span class="gm-ticker-mode"></span></div><ol></ol>';
    var list = box.querySelector("ol");
    var mode = box.querySelector(".gm-ticker-mode");
    function setMode(value) {
      G.live.mode = value;
      mode.textContent = text[value] || value;
      mode.className = "gm-ticker-mode gm-" + value;
    }
    setMode("polling");
    var attach = function (m) {
      if (m && !box.parentNode) m.getContainer().appendChild(box);
      L.DomEvent.disableClickPropagation(box);
    };
    if (map) attach(map);
    else realtime.once("add", function () { attach(realtime._map); });
    var refetch = null;
    function onEvent(e) {
      var d = JSON.parse(e.data);
      var p = (d.feature && d.feature.properties) || {};
      G.live.received += 1;
      G.live.last = d;
      var li = document.createElement("li");
      var clock = (d.at || "").substr(11, 8);
      var what = text[e.type] || e.type;
      var status = e.type === "incident.status" && d.to_status ? " → " + t("status." + d.to_status) : "";
      // A dispatch step (offer, acceptance, arrival, summons ...) leaves the status as it is: name the step.
      var step = d.action && text["action." + d.action];
      if (step && d.from_status === d.to_status) status = " · " + step;
      li.innerHTML = "<b>" + esc(clock) + "</b> " + esc(what) + " #" + esc(String(d.incident_id)) + " " +
        esc(p.category ? t("category." + p.category) : "") + esc(status);
      list.insertBefore(li, list.firstChild);
      while (list.children.length > 8) list.removeChild(list.lastChild);
      if (filtered) {
        if (!refetch) refetch = setTimeout(function () { refetch = null; realtime.update(); }, 300);
      } else if (d.feature) {
        realtime.update({ type: "FeatureCollection", features: [d.feature] });
      }
    }
    var source = new EventSource(url);
    G.live.source = source;
    EVENT_TYPES.forEach(function (type) { source.addEventListener(type, onEvent); });
    source.addEventListener("ready", function () {
      realtime.stop();
      setMode("push");
    });
    source.addEventListener("resync", function () { realtime.update(); });
    source.onerror = function () {
      if (!realtime.isRunning()) realtime.start();
      setMode("polling");
    };
  };

  /* ---- filling layers ------------------------------------------------------------------- */

  function points(data, toLayer) {
    var out = [];
    (data.features || []).forEach(function (f) {
      if (!f.geometry || f.geometry.type !== "Point") return;
      var c = f.geometry.coordinates;
      out.push(toLayer(f, L.latLng(c[1], c[0])));
    });
    return out;
  }
  function addAll(group, layers) {
    if (typeof group.addLayers === "function") group.addLayers(layers);
    else layers.forEach(function (l) { group.addLayer(l); });
  }

  G.builders = {
    areas: function (kind, style) {
      return function (data, group) { group.addLayer(G.areas(data, kind, style)); };
    },
    incidents: function (data, group) { addAll(group, points(data, G.incidentMarker)); },
    escalated: function (data, group) { addAll(group, points(data, G.escalatedMarker)); },
    buildings: function (data, group) { addAll(group, points(data, G.buildingMarker)); },
    hazards: function (data, group) { addAll(group, points(data, G.hazardMarker)); },
  };

  /* Fill ``group`` with ``data`` now, or fetch ``url`` the first time the group is on the map. */
  G.fill = function (key, group, builder, data, url) {
    if (data) {
      builder(data, group);
      G.loaded[key] = true;
      return;
    }
    var state = "idle";
    function load() {
      if (state !== "idle") return;
      state = "loading";
      fetch(url, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (json) {
          builder(json, group);
          state = "done";
          G.loaded[key] = true;
        })
        .catch(function (err) {
          state = "idle";
          console.warn("gridmap: could not load " + key + ": " + err.message);
        });
    }
    group.on("add", load);
    if (group._map) load();
  };

  /* The filter form: a custom window shows the date inputs. */
  G.form = function (formId) {
    var form = document.getElementById(formId);
    if (!form) return;
    var windowSelect = form.querySelector("select[name=window]");
    var dates = form.querySelector(".gm-dates");
    function sync() {
      if (windowSelect && dates) dates.style.display = windowSelect.value === "custom" ? "" : "none";
    }
    if (windowSelect) windowSelect.addEventListener("change", sync);
    sync();
    // Drop empty fields so the URL stays readable and shareable.
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && !el.value) el.disabled = true;
      });
    });
  };
})();
