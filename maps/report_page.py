"""The residents' page (/report): report a matter from a phone, then follow and rate it.

One HTML page with its script inlined (one request on a slow mobile network); Leaflet and the icon
come from this server's offline assets (maps.offline), never from a CDN. The map shows the
county's towns and villages from ``GET /public/areas`` on the intranet's tiles when configured
(``GRIDMAP_TILE_URL``), else on a plain background. Chinese by default, English with ``?lang=en``.
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path

from gis.channels.categories import category_list
from gis.core.settings import Settings
from maps.offline import own_url, page_url

HERE = Path(__file__).resolve().parent / "resident"
CENTER = (120.92, 30.84)  # 嘉善县, until the outlines are loaded and the map fits them
TITLES = {"zh": "随手拍 · 我要反映", "en": "Report a problem"}


@cache
def _template() -> tuple[str, str]:
    return (HERE / "report.html").read_text(encoding="utf-8"), (HERE / "report.js").read_text(encoding="utf-8")


def report_page(settings: Settings, lang: str = "zh") -> str:
    lang = "en" if lang == "en" else "zh"
    page, script = _template()
    config = {
        "lang": lang,
        "categories": category_list(lang),
        "center": CENTER,
        "tile_url": settings.tile_url,
        "tile_crs": settings.tile_crs if settings.tile_url else "wgs84",
    }
    # "</" cannot end the script element early when escaped; the JSON stays valid.
    config_js = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    values = {
        "lang": "en" if lang == "en" else "zh-CN",
        "title": html.escape(TITLES[lang]),
        "favicon": own_url("favicon.ico"),
        "leaflet_css": page_url("leaflet.css"),
        "leaflet_js": page_url("leaflet.js"),
        "other_lang_url": "/report" if lang == "en" else "/report?lang=en",
        "other_lang": "中文" if lang == "en" else "English",
        "config": config_js,
        "script": script,
    }
    for key, value in values.items():
        page = page.replace("{{" + key + "}}", value)
    return page
