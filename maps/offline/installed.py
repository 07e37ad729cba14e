"""Where the installed asset files are, and whether every one the pages need is there."""

from __future__ import annotations

import json
from pathlib import Path

from maps.offline.catalog import (
    CDN_ASSETS,
    CSS_URL_REWRITES,
    INSTALL_HINT,
    OWN_ASSETS,
    PAGE_ASSETS,
    AssetsMissingError,
    OfflineAssetError,
    asset_root,
    log,
)


def check_assets() -> list[str]:
    """Mapped files that are not installed, or installed at another version.

    Empty when everything is in place; otherwise logs one warning naming the
    fix (`make assets`).
    """
    wanted = (*CDN_ASSETS.values(), *PAGE_ASSETS.values(), *OWN_ASSETS.values())
    missing = sorted({str(a.file) for a in wanted if not a.file.is_file()})
    missing += sorted({f"{a.file} (folder)" for a in CSS_URL_REWRITES.values() if not a.file.is_dir()})
    for package, pinned in sorted(_served_packages().items()):
        installed = _installed_version(package)
        if installed is not None and installed != pinned:
            missing.append(f"{asset_root() / package} (installed {installed}, pinned {pinned})")
    if missing:
        log.warning("%d map asset file(s) missing; %s", len(missing), INSTALL_HINT)
    return missing


def ensure_assets() -> None:
    """Raise AssetsMissingError, naming the fix, unless every file is installed."""
    missing = check_assets()
    if missing:
        shown = "\n  ".join(missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise AssetsMissingError(
            f"{len(missing)} map asset file(s) are not installed; {INSTALL_HINT}.\n  {shown}{more}"
        )


def _installed_version(package: str) -> str | None:
    manifest = asset_root() / package / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def _served_packages() -> dict[str, str]:
    npm = (*CDN_ASSETS.values(), *PAGE_ASSETS.values(), *CSS_URL_REWRITES.values())
    return {a.package: a.version for a in npm if a.root == "npm"}


def locate(name: str) -> Path:
    """The file behind a served name such as ``npm/leaflet@1.9.3/dist/leaflet.css``.

    Any file inside a mapped npm package may be served (CSS pulls in sibling
    fonts and images); the folium and gridmap roots serve mapped files only.
    The path is returned whether or not the file exists.
    """
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts[1:]):
        raise OfflineAssetError(f"served name {name!r} is not a clean relative path")
    root = parts[0]
    if root == "npm":
        scoped = len(parts) > 1 and parts[1].startswith("@")
        spec_len = 3 if scoped else 2
        spec = "/".join(parts[1:spec_len])
        package, _, version = spec.rpartition("@")
        rest = "/".join(parts[spec_len:])
        wanted = _served_packages().get(package)
        if not package or not rest or wanted is None:
            raise OfflineAssetError(f"served name {name!r} is not in a mapped npm package")
        if version != wanted:
            raise OfflineAssetError(f"served name {name!r} asks for {package}@{version}; gridmap pins {wanted}")
        return asset_root() / package / rest
    for asset in (*CDN_ASSETS.values(), *OWN_ASSETS.values()):
        if asset.root != "npm" and asset.name == name:
            return asset.file
    raise OfflineAssetError(f"served name {name!r} is not a mapped asset")
