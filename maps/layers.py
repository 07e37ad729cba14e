"""Building blocks shared by the map pages: the base map, layers filled by gridmap's client code,
the filter form and the legend.

Layers are folium containers (FeatureGroup, MarkerCluster) that ``gridmap.fill`` (in
``maps/assets/gridmap/gridmap-maps.js``) fills from inline GeoJSON or, on served pages, from a
data endpoint the first time the layer is switched on.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import folium
import orjson
from branca.element import Element, Figure, MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from gis.core.vocab import COUNTY_TZ
from gis.outputs.mapdata import WINDOWS, IncidentFilter
from maps import offline
from maps.i18n import label, labels
from maps.page import PageContext

# Leaflet.heat's default ramp; the legend draws the same one.
HEAT_GRADIENT = {0.4: "blue", 0.6: "cyan", 0.7: "lime", 0.8: "yellow", 1.0: "red"}


def js_data(value: Any) -> str:
    """JSON safe to place inside a <script> element and inside a folium (Jinja) template.

    folium compiles every rendered script as a Jinja template again, so a "{{" coming from the
    database would be evaluated on the server; JSON has "{{", "{%" and "{#" only inside strings,
    where a unicode escape means the same character.
    """
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode().replace("</", "<\\/")
    return text.replace("{{", "{\\u007b").replace("{%", "{\\u0025").replace("{#", "{\\u0023")


def safe_label(text: str) -> str:
    """Text for a layer-tree label (HTML, inside a folium template): escaped, braces as entities."""
    return html.escape(text).replace("{", "&#123;").replace("}", "&#125;")


class RawHtml(Element):
    """Markup placed in the page as is: never compiled as a template (it may hold data)."""

    def __init__(self, markup: str):
        super().__init__("")
        self._name = "RawHtml"
        self.markup = markup

    def render(self, **kwargs: Any) -> str:
        return self.markup


class JsRef:
    """A JavaScript expression for a folium template slot that prints its value with str()."""

    def __init__(self, expression: str):
        self.expression = expression

    def __str__(self) -> str:
        return self.expression

    def __len__(self) -> int:
        return 0


class GridmapSetup(JSCSSMixin, MacroElement):
    """Loads gridmap-maps.js/css and hands it the map, the labels and the links of the page."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            gridmap.setup({{ this._parent.get_name() }}, {{ this.options_json }});
        {% endmacro %}
        """
    )

    def __init__(self, ctx: PageContext, options: Mapping[str, Any]):
        super().__init__()
        self._name = "GridmapSetup"
        self.default_js = [("gridmap-maps.js", offline.own_url("gridmap-maps.js", ctx.asset_prefix))]
        self.default_css = [("gridmap-maps.css", offline.own_url("gridmap-maps.css", ctx.asset_prefix))]
        self.options_json = js_data(dict(options))


class Script(MacroElement):
    """A line of page script, run after the layers it names exist."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

    def __init__(self, code: str):
        super().__init__()
        self._name = "Script"
        self.code = code


class Fill(MacroElement):
    """Fill a folium container with features: from ``gridmap.data[key]`` or from ``url`` when shown."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            gridmap.fill({{ this.key_json }}, {{ this.target.get_name() }}, {{ this.builder }},
                {{ this.data_ref }}, {{ this.url_json }});
            gridmap.register({{ this.key_json }}, {{ this.target.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, key: str, target: Element, builder: str, inline: bool, url: str | None = None):
        super().__init__()
        self._name = "Fill"
        self.key_json = js_data(key)
        self.target = target
        self.builder = builder
        self.data_ref = f"gridmap.data[{self.key_json}]" if inline else "null"
        self.url_json = js_data(url)


def inline_data(m: folium.Map, key: str, value: Any) -> str:
    """Put ``value`` in the page as ``gridmap.data[key]``; returns that JS expression.

    The data goes in a script of its own in the page body (before the map script), so that
    folium never pushes megabytes of JSON through its template engine.
    """
    ref = f"gridmap.data[{js_data(key)}]"
    add_html(
        m,
        "<script>(window.gridmap = window.gridmap || {}).data = gridmap.data || {};\n"
        f"{ref} = {js_data(value)};</script>",
    )
    return ref


def fill(m: folium.Map, key: str, target: Element, builder: str, data: Any = None, url: str | None = None) -> None:
    """Fill ``target`` with GeoJSON ``data`` (inline) or, when it is first shown, from ``url``."""
    if data is None and url is None:
        raise ValueError(f"layer {key!r}: give inline data or a URL")
    if data is not None:
        inline_data(m, key, data)
    Fill(key, target, builder, inline=data is not None, url=None if data is not None else url).add_to(m)


def tile_subdomains(tile_url: str) -> str:
    """The ``{s}`` values of a tile URL: Tianditu serves t0..t7, the others a, b, c."""
    return "01234567" if "tianditu" in tile_url else "abc"


def base_map(ctx: PageContext, bounds: Sequence[float] | None, **kwargs: Any) -> folium.Map:
    """A map fitted to ``bounds`` (min lon, min lat, max lon, max lat) with the configured tiles
    or, with none configured, a plain background; attribution says the boundaries are synthetic."""
    m = folium.Map(
        location=[30.84, 120.92],
        zoom_start=11,
        tiles=None,
        # On the map itself (not only a tile layer): MarkerCluster needs the map's maxZoom.
        minZoom=7,
        maxZoom=19,
        control_scale=True,
        prefer_canvas=True,
        **kwargs,
    )
    if ctx.tile_url:
        folium.TileLayer(
            tiles=ctx.tile_url,
            attr=html.escape(ctx.tile_attribution or "base map"),
            name="base",
            max_zoom=19,
            subdomains=tile_subdomains(ctx.tile_url),
            control=False,
        ).add_to(m)
    if bounds is not None:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def setup(m: folium.Map, ctx: PageContext, links: Mapping[str, str] | None = None) -> None:
    GridmapSetup(
        ctx,
        {
            "labels": labels(ctx.lang),
            "links": dict(links or {}),
            "attribution": html.escape(label("attribution", ctx.lang)),
            "plain": not ctx.tile_url,
        },
    ).add_to(m)
    if not ctx.tile_url:
        Script(f"{m.get_name()}.getContainer().classList.add('gm-plain');").add_to(m)
    root = m.get_root()
    assert isinstance(root, Figure), "the map must belong to a Figure"
    # gridmap's icon from the asset folder (folded into the file when the page is standalone).
    root.header.add_child(RawHtml(offline.favicon_link(ctx.asset_prefix)), name="favicon")


def register(m: folium.Map, key: str, layer: Element) -> None:
    """Expose a folium layer to the page script (and to browser tests) as gridmap.layers[key]."""
    Script(f"gridmap.register({js_data(key)}, {layer.get_name()});").add_to(m)


def add_html(m: folium.Map, markup: str) -> None:
    root = m.get_root()
    assert isinstance(root, Figure), "the map must belong to a Figure"
    root.html.add_child(RawHtml(markup))


# --- form and legend ----------------------------------------------------------------------------


def _options(values: Iterable[str], selected: Sequence[str], prefix: str, lang: str) -> str:
    items = [f'<option value="">{html.escape(label("form.all", lang))}</option>']
    for value in values:
        mark = " selected" if value in selected else ""
        text = label(f"{prefix}.{value}", lang)
        items.append(f'<option value="{html.escape(value)}"{mark}>{html.escape(text)}</option>')
    return "".join(items)


def filter_form(
    ctx: PageContext,
    path: str,
    title: str,
    flt: IncidentFilter,
    choices: Mapping[str, Sequence[str]],
    extra: str = "",
    panel: bool = True,
) -> str:
    """The top panel: title, filters (a GET form reloading the page), and the language switch.

    With ``panel=False`` only the title, form and switch, to place inside another panel.
    """
    lang = ctx.lang
    esc = html.escape
    windows = "".join(
        f'<option value="{w}"{" selected" if w == flt.window else ""}>{esc(label("window." + w, lang))}</option>'
        for w in WINDOWS
    )
    query = flt.query()
    fields = [
        f'<label>{esc(label("form.window", lang))}</label><select name="window">{windows}</select>',
        '<span class="gm-dates">'
        f"<label>{esc(label('form.from', lang))}</label>"
        f'<input type="date" name="from" value="{esc(query.get("from", ""))}">'
        f"<label>{esc(label('form.to', lang))}</label>"
        f'<input type="date" name="to" value="{esc(query.get("to", ""))}">'
        "</span>",
    ]
    for name, prefix, selected in (
        ("category", "category", flt.category),
        ("source", "source", flt.source),
        ("status", "status", flt.status),
    ):
        values = list(choices.get(name, ()))
        values += [v for v in selected if v not in values]
        fields.append(
            f"<label>{esc(label('f.' + name, lang))}</label>"
            f'<select name="{name}">{_options(values, selected, prefix, lang)}</select>'
        )
    hidden = ""
    if lang != "zh":
        hidden += f'<input type="hidden" name="lang" value="{esc(lang)}">'
    if ctx.key:
        hidden += f'<input type="hidden" name="key" value="{esc(ctx.key)}">'
    disabled = " disabled" if ctx.standalone else ""
    form = (
        f'<form id="gm-filter" method="get" action="{esc(ctx.base_url + path)}">'
        f'<fieldset style="display:inline;border:0;margin:0;padding:0"{disabled}>'
        f'{"".join(fields)}{extra}{hidden} <button type="submit">{esc(label("form.apply", lang))}</button>'
        "</fieldset></form>"
    )
    switch = (
        ""
        if ctx.standalone
        else (f'<a class="gm-lang" href="{esc(ctx.page_url(path))}">{esc(label("form.lang", lang))}</a>')
    )
    inner = f"<h1>{esc(title)}</h1>{form}{switch}"
    return (
        f'<div class="gm-panel gm-top">{inner}</div>' if panel else inner
    ) + "<script>document.addEventListener('DOMContentLoaded',function(){gridmap.form('gm-filter');});</script>"


def legend(ctx: PageContext, items: Sequence[str], notes: Sequence[str] = ()) -> str:
    """The legend panel; ``items`` are HTML snippets (use the helpers below), ``notes`` plain text."""
    lang = ctx.lang
    body = "".join(f"<div>{item}</div>" for item in items)
    all_notes = [*notes, label("legend.synthetic", lang)]
    if ctx.standalone:
        stamp = ctx.at.astimezone(COUNTY_TZ).strftime("%Y-%m-%d %H:%M")
        all_notes.append(label("legend.snapshot", lang, at=stamp))
    note_html = "".join(f'<div class="gm-note">{html.escape(n)}</div>' for n in all_notes)
    return (
        f'<div class="gm-panel gm-legend" id="gm-legend"><h2>{html.escape(label("legend.title", lang))}</h2>'
        f"{body}{note_html}</div>"
    )


def swatch(color: str, text: str) -> str:
    return f'<span class="gm-sw" style="background:{html.escape(color)}"></span>{html.escape(text)}'


def line(color: str, text: str, dash: bool = False) -> str:
    style = f"border-top-color:{html.escape(color)}" + (";border-top-style:dashed" if dash else "")
    return f'<span class="gm-line" style="{style}"></span>{html.escape(text)}'


def heat_ramp(text: str) -> str:
    return f'<span class="gm-ramp"></span> {html.escape(text)}'


AREA_COLORS = {
    "county": "#222",
    "town": "#6a3d9a",
    "village": "#1f78b4",
    "grid": "#33a02c",
    "micro_grid": "#8fbf7f",
    "station": "#e31a1c",
    "beat": "#ff7f00",
}
# Incident markers (overdue, recent) and escalated ones: escalated is not overdue (gis.core.vocab).
INCIDENT_COLOR = "#b10026"
ESCALATED_COLOR = "#6a3d9a"
RISK_COLORS = {"high": "#d7191c", "medium": "#fdae61", "low": "#1a9641", "none": "#888888"}
# The rectification loop's statuses (gis.core.vocab.HAZARD_STATUSES), the same colours in maps/assets.
HAZARD_STATUS_COLORS = {
    "open": "#d7191c",
    "notified": "#f46d43",
    "overdue": "#7b0000",
    "rectifying": "#fdae61",
    "submitted": "#a6d96a",
    "rectified": "#1a9641",
}


def area_legend(lang: str, layers: Iterable[str]) -> list[str]:
    return [line(AREA_COLORS[x], label(f"layer.{x}", lang), dash=x in ("beat", "micro_grid")) for x in layers]


def stamp(value: dt.datetime) -> str:
    return value.astimezone(COUNTY_TZ).strftime("%Y-%m-%d %H:%M")
