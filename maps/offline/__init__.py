"""Serve every JS/CSS file of gridmap's folium pages locally, for offline intranets.

folium points each page at ~60 CDN URLs. Command centres run on isolated
networks, so this module maps each CDN URL we rely on to a file installed from
npm into ``maps/assets/node_modules`` (``npm ci --prefix maps/assets``), to a
file shipped inside folium's own ``templates/`` folder, or to a small file of
ours in ``maps/assets/gridmap/``.

Every local file has a *served name*:

* ``npm/<package>@<version>/<path>`` for npm files,
* ``folium@<version>/<path>`` for folium's templates folder,
* ``gridmap/<path>`` for our own files,

so ``localize()`` makes pages reference ``{prefix}/<served name>``,
``static_files_app()`` answers those URLs, and ``inline_assets()`` folds them
into one standalone HTML file. Versions are part of the name so the files can
be cached "forever" by browsers: a version bump changes every URL."""

from maps.offline.catalog import (
    ASSET_ROOT_ENV,
    ASSETS_DIR,
    CDN_ASSETS,
    CSS_URL_REWRITES,
    DEFAULT_PREFIX,
    FOLIUM_VERSION,
    INSTALL_COMMAND,
    INSTALL_HINT,
    JS_URL_REWRITES,
    OWN_ASSETS,
    PAGE_ASSETS,
    USED_CLASSES,
    AssetsMissingError,
    OfflineAssetError,
    asset_root,
    favicon_link,
    own_url,
    page_url,
)
from maps.offline.inline import (
    _CSS_URL,
    _css_target,
    _url_of,
    inline_assets,
    rewrite_css_for_serving,
    rewrite_js_for_serving,
)
from maps.offline.installed import check_assets, ensure_assets, locate
from maps.offline.localize import (
    all_cdn_urls,
    class_cdn_urls,
    local_url,
    localize,
    resolve_class,
    unlocalize,
    unmapped_urls,
)
from maps.offline.serve import static_files_app

__all__ = [
    "ASSETS_DIR",
    "ASSET_ROOT_ENV",
    "AssetsMissingError",
    "CDN_ASSETS",
    "CSS_URL_REWRITES",
    "DEFAULT_PREFIX",
    "FOLIUM_VERSION",
    "INSTALL_COMMAND",
    "INSTALL_HINT",
    "JS_URL_REWRITES",
    "OWN_ASSETS",
    "OfflineAssetError",
    "PAGE_ASSETS",
    "USED_CLASSES",
    "_CSS_URL",
    "_css_target",
    "_url_of",
    "all_cdn_urls",
    "asset_root",
    "check_assets",
    "class_cdn_urls",
    "ensure_assets",
    "favicon_link",
    "inline_assets",
    "local_url",
    "localize",
    "locate",
    "own_url",
    "page_url",
    "resolve_class",
    "rewrite_css_for_serving",
    "rewrite_js_for_serving",
    "static_files_app",
    "unlocalize",
    "unmapped_urls",
]
