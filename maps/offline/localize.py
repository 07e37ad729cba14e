"""Point folium's element classes at the local copies instead of their CDN URLs (and back)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pkgutil
import re
from collections.abc import Iterator

import branca
import folium
from branca.element import Element

from maps.offline.catalog import CDN_ASSETS, DEFAULT_PREFIX, USED_CLASSES, OfflineAssetError, _clean_prefix, log


def iter_element_classes() -> Iterator[type[Element]]:
    """Every Element subclass in folium and branca (importing all their modules)."""
    for package in (folium, branca):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                importlib.import_module(module.name)
            except ImportError as exc:  # an optional dependency we don't have
                log.debug("skipping %s: %s", module.name, exc)
    seen: set[type[Element]] = set()
    stack: list[type[Element]] = [Element]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def resolve_class(dotted: str) -> type[Element]:
    module_name, _, attr = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Element)):
        raise OfflineAssetError(f"{dotted!r} is not a folium/branca Element class")
    return cls


Link = tuple[str, str]


_ATTRS = ("default_js", "default_css")


# id(list) -> (the live class-level list, its CDN entries before localize()).
_originals: dict[int, tuple[list[Link], list[Link]]] = {}


def _cdn_links(links: list[Link]) -> list[Link]:
    saved = _originals.get(id(links))
    return list(saved[1]) if saved is not None and saved[0] is links else list(links)


def class_cdn_urls(cls: type[Element]) -> list[str]:
    """The CDN URLs a class (with inherited lists) asks folium to load."""
    urls: list[str] = []
    for attr in _ATTRS:
        links = getattr(cls, attr, None)
        if isinstance(links, list):
            urls += [url for _, url in _cdn_links(links)]
    return urls


def all_cdn_urls() -> dict[str, list[str]]:
    """CDN URL -> classes that declare it, over all of folium and branca."""
    found: dict[str, list[str]] = {}
    for cls in iter_element_classes():
        for attr in _ATTRS:
            links = cls.__dict__.get(attr)
            if isinstance(links, list):
                for _, url in _cdn_links(links):
                    found.setdefault(url, []).append(f"{cls.__module__}.{cls.__qualname__}")
    return found


_EXTERNAL_REF = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*\\?["']?|url\(\s*["']?)((?:https?:)?//[^"'\s)>\\]+)""",
    re.IGNORECASE,
)


def hardcoded_urls(cls: type[Element]) -> list[str]:
    """External URLs written into a class's own source (its Template strings)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return []
    return _EXTERNAL_REF.findall(source)


def unmapped_urls(classes: tuple[str, ...] = USED_CLASSES) -> dict[str, list[str]]:
    """Class -> URLs it loads (declared or hard-coded) that have no local file."""
    gaps: dict[str, list[str]] = {}
    for dotted in classes:
        cls = resolve_class(dotted)
        missing = [u for u in class_cdn_urls(cls) if u not in CDN_ASSETS]
        missing += hardcoded_urls(cls)
        if missing:
            gaps[dotted] = missing
    return gaps


def local_url(cdn_url: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    asset = CDN_ASSETS.get(cdn_url)
    return None if asset is None else f"{_clean_prefix(prefix)}/{asset.name}"


def localize(prefix: str = DEFAULT_PREFIX) -> None:
    """Make every page built afterwards load mapped files from ``{prefix}/<name>``.

    Rewrites the class-level ``default_js``/``default_css`` lists of every
    folium/branca Element (in place, so ``folium.folium._default_js``, which
    is the very list ``Map.default_js`` holds, follows). URLs without a local
    file are left untouched. Calling it again, with any prefix, starts from
    folium's original URLs, so it is idempotent.

    Mapped links are also renamed to their served name. folium keys a page's
    header links by name, so two plugins that load one file under different
    names (jQuery from Map and TimestampedGeoJson; leaflet-timedimension from
    HeatMapWithTime and TimestampedGeoJson) now load it once. Loading
    leaflet-timedimension twice patches L.TileLayer twice and overflows the
    stack, so this is a fix, not a nicety.
    """
    clean = _clean_prefix(prefix)
    for cls in iter_element_classes():
        for attr in _ATTRS:
            links = cls.__dict__.get(attr)
            if not isinstance(links, list):
                continue
            # Keyed by id: safe because the entry keeps the list alive.
            saved = _originals.setdefault(id(links), (links, list(links)))
            links[:] = [
                (CDN_ASSETS[url].name, f"{clean}/{CDN_ASSETS[url].name}") if url in CDN_ASSETS else (name, url)
                for name, url in saved[1]
            ]


def unlocalize() -> None:
    """Put folium's CDN URLs back (undoes ``localize``)."""
    for links, original in _originals.values():
        links[:] = original
    _originals.clear()
