"""What every map page needs to know about its request, and turning a folium map into HTML.

A page is either *served* (by the API: scripts from ``/static/vendor``, heavy layers fetched from
the data endpoints when switched on, a live layer polling the server) or *standalone* (one file
with every script, style and layer inside it, for ``gridmap map ... --out FILE``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import folium

from gis.core.settings import Settings
from gis.outputs.mapdata import LayerCache, check_display_crs
from gis.people.scope import WHOLE_COUNTY, Scope
from maps import offline
from maps.i18n import check_lang


@dataclass(frozen=True)
class PageContext:
    """Request-level settings of a page."""

    lang: str = "zh"
    role: str | None = "viewer"  # whose eyes: personal data is masked below dispatcher
    key: str | None = None  # API key to pass on to the data URLs the page fetches
    base_url: str = ""  # where the API is mounted ("" or e.g. "/gridmap")
    standalone: bool = False
    display_crs: str = "wgs84"
    tile_url: str | None = None
    tile_attribution: str = ""
    realtime_interval_ms: int = 10_000
    heat_threshold: int = 50_000
    asset_prefix: str = offline.DEFAULT_PREFIX
    now: dt.datetime | None = None
    extra_query: dict[str, str] = field(default_factory=dict)
    # Where the boundary layers are kept between pages (the API's, or a standalone build's own).
    layer_cache: LayerCache | None = field(default=None, compare=False, repr=False)
    scope: Scope = WHOLE_COUNTY  # the caller's areas: the page's layers and points stay inside

    def __post_init__(self) -> None:
        object.__setattr__(self, "lang", check_lang(self.lang))
        check_display_crs(self.display_crs)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> PageContext:
        base = cls(
            display_crs=settings.tile_crs if settings.tile_url else "wgs84",
            tile_url=settings.tile_url,
            tile_attribution=settings.tile_attribution,
            realtime_interval_ms=settings.realtime_interval_ms,
            heat_threshold=settings.heat_point_threshold,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def url(self, path: str, **query: str | None) -> str:
        """A server URL carrying the page's key and language, plus ``query`` (None values dropped)."""
        params = {k: v for k, v in query.items() if v not in (None, "")}
        if self.lang != "zh":
            params.setdefault("lang", self.lang)
        if self.key:
            params["key"] = self.key
        text = urlencode(params, safe=",{}")
        return f"{self.base_url}{path}" + (f"?{text}" if text else "")

    def page_url(self, path: str) -> str:
        """Same page in the other language (for the switch link)."""
        other = "en" if self.lang == "zh" else "zh"
        return replace(self, lang=other).url(path, **self.extra_query)

    @property
    def at(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.UTC)


def render(m: folium.Map, ctx: PageContext) -> str:
    """The page's HTML: local script URLs when served, everything inlined when standalone."""
    # Cheap when already done, and redone if something (a test) put folium's CDN URLs back.
    offline.localize(ctx.asset_prefix)
    html = m.get_root().render()
    if ctx.standalone:
        html = offline.inline_assets(html, ctx.asset_prefix)
    return html
