"""CSS rewritten for serving, and whole pages with every asset folded in (standalone HTML files)."""

from __future__ import annotations

import base64
import mimetypes
import posixpath
import re
from pathlib import Path

from maps.offline.catalog import (
    CSS_URL_REWRITES,
    DEFAULT_PREFIX,
    INSTALL_HINT,
    JS_URL_REWRITES,
    AssetsMissingError,
    OfflineAssetError,
)
from maps.offline.installed import locate
from maps.offline.localize import _clean_prefix

_CSS_URL = re.compile(r"""url\(\s*(?:'([^']*)'|"([^"]*)"|([^)'"\s]*))\s*\)""")


_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.IGNORECASE)


_SOURCE_MAP = re.compile(r"/\*# sourceMappingURL=[^*]*\*/|//# sourceMappingURL=\S*")


_FONT_PREFERENCE = (".woff2", ".woff", ".ttf", ".otf")


def _css_target(css_name: str, ref: str) -> tuple[str, str] | None:
    """Served name + #fragment that a url() in a served CSS file points at.

    None for refs to leave alone (data: URIs, in-document #ids, unknown hosts).
    """
    if ref.startswith(("data:", "#")) or not ref:
        return None
    bare, _, fragment = ref.partition("#")
    bare = bare.partition("?")[0]
    for external, folder in CSS_URL_REWRITES.items():
        for scheme in ("", "http:", "https:"):
            if bare.startswith(scheme + external):
                return folder.name + bare[len(scheme + external) :], fragment
    if re.match(r"^([a-z]+:)?//", bare, re.IGNORECASE):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(css_name), bare))
    return joined, fragment


def _url_of(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


def _prune_font_sources(css: str) -> str:
    """Keep one modern format per @font-face ``src`` (inlined fonts are big).

    Drops IE-only ``src: url(x.eot)`` lines and, in a list of formats, keeps
    the first of woff2 / woff / ttf / otf that is offered.
    """

    def ext(item: str) -> str:
        match = _CSS_URL.search(item)
        ref = _url_of(match) if match else ""
        return posixpath.splitext(ref.partition("#")[0].partition("?")[0])[1].lower()

    def prune_block(block: re.Match[str]) -> str:
        body = block.group(0)
        head, _, inner = body.partition("{")
        decls = inner.rstrip("}").split(";")
        srcs = [d for d in decls if d.strip().lower().startswith("src")]
        kept: list[str] = []
        for decl in decls:
            if decl not in srcs:
                kept.append(decl)
                continue
            items = decl.split(":", 1)[1].split(",")
            exts = [ext(i) for i in items]
            if exts == [".eot"] and len(srcs) > 1:
                continue
            best = next((e for e in _FONT_PREFERENCE if e in exts), None)
            if best is not None:
                decl = decl.split(":", 1)[0] + ":" + items[exts.index(best)]
            kept.append(decl)
        return head + "{" + ";".join(kept) + "}"

    return _FONT_FACE.sub(prune_block, css)


def rewrite_css_for_serving(css: str, css_name: str) -> str:
    """Point a served CSS file's CDN font URLs at local copies (relative URLs)."""

    def swap(match: re.Match[str]) -> str:
        ref = _url_of(match)
        target = _css_target(css_name, ref)
        if target is None or not ref.lstrip().startswith(("//", "http:", "https:")):
            return match.group(0)
        name, fragment = target
        rel = posixpath.relpath(name, posixpath.dirname(css_name))
        return f'url("{rel}{"#" + fragment if fragment else ""}")'

    return _CSS_URL.sub(swap, css)


def rewrite_js_for_serving(code: str, js_name: str) -> str:
    """Replace the outside URLs a served script would fetch (JS_URL_REWRITES) by local ones."""
    for external, local in JS_URL_REWRITES.get(js_name, {}).items():
        code = code.replace(external, local)
    return code


def _media_type(path: str) -> str:
    known = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".eot": "application/vnd.ms-fontobject",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".map": "application/json",
    }
    ext = posixpath.splitext(path)[1].lower()
    return known.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _data_uri(path: Path) -> str:
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{_media_type(path.name).split(';')[0]};base64,{payload}"


def _read_installed(name: str) -> bytes:
    path = locate(name)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AssetsMissingError(f"{path} is not installed; {INSTALL_HINT}") from exc


def _inline_css(css: str, css_name: str) -> str:
    def embed(match: re.Match[str]) -> str:
        target = _css_target(css_name, _url_of(match))
        if target is None:
            return match.group(0)
        name, fragment = target
        try:
            path = locate(name)
        except OfflineAssetError:
            path = None
        if path is None or not path.is_file():
            # A file the package never shipped: an empty image beats a request.
            return 'url("data:,")'
        return f'url("{_data_uri(path)}{"#" + fragment if fragment else ""}")'

    return _SOURCE_MAP.sub("", _CSS_URL.sub(embed, _prune_font_sources(css)))


# Leaflet finds its default marker images by reading a CSS background URL and
# stripping "marker-icon.png"; a data: URI defeats that, so after inlining we
# hand Leaflet the images directly (an imagePath string skips the detection).
_LEAFLET_ICONS = {
    "iconUrl": "marker-icon.png",
    "iconRetinaUrl": "marker-icon-2x.png",
    "shadowUrl": "marker-shadow.png",
}


def _leaflet_icon_fix(leaflet_js_name: str) -> str:
    images = posixpath.join(posixpath.dirname(leaflet_js_name), "images")
    options = ", ".join(f'{key}: "{_data_uri(locate(f"{images}/{file}"))}"' for key, file in _LEAFLET_ICONS.items())
    return f"L.Icon.Default.imagePath = ''; L.Icon.Default.mergeOptions({{{options}}});"


def inline_assets(html: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Fold every ``{prefix}/...`` script and stylesheet of a page into it.

    The result loads with no server and no network: scripts become inline
    ``<script>`` blocks and stylesheets ``<style>`` blocks whose fonts and
    images are data: URIs (one font format per face: woff2 where offered).
    Source-map comments are dropped. Raises AssetsMissingError if a file is
    not installed.
    """
    clean = _clean_prefix(prefix)
    quoted = re.escape(clean)
    script = re.compile(rf"""<script\b[^>]*?\bsrc=["']{quoted}/([^"']+)["'][^>]*>\s*</script>""", re.IGNORECASE)
    link = re.compile(rf"""<link\b[^>]*?\bhref=["']{quoted}/([^"']+)["'][^>]*>""", re.IGNORECASE)

    def js(match: re.Match[str]) -> str:
        name = match.group(1)
        code = _SOURCE_MAP.sub("", rewrite_js_for_serving(_read_installed(name).decode("utf-8"), name))
        if name.startswith("npm/leaflet@") and name.endswith("/leaflet.js"):
            code += "\n" + _leaflet_icon_fix(name)
        code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
        return f"<script>/* {name} */\n{code}\n</script>"

    def css(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.endswith(".css"):
            # A link to something other than a stylesheet (the page's icon): a data: URI in place.
            payload = base64.b64encode(_read_installed(name)).decode("ascii")
            uri = f"data:{_media_type(name).split(';')[0]};base64,{payload}"
            return match.group(0).replace(f"{clean}/{name}", uri)
        text = _inline_css(_read_installed(name).decode("utf-8"), name)
        text = re.sub(r"</(style)", r"<\\/\1", text, flags=re.IGNORECASE)
        return f"<style>/* {name} */\n{text}\n</style>"

    return link.sub(css, script.sub(js, html))
