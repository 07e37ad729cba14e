"""Headless Chromium for checking map pages (browser tests, the map benchmark).

Debian's ``/usr/bin/chromium`` driven by the ``playwright`` client; no browser is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

# Count of non-transparent pixels on the heat canvas (Leaflet.heat, or heatmap.js for the
# animated page); 0 while nothing is painted or the canvas does not exist yet.
HEAT_PIXELS_JS = """() => {
  const c = document.querySelector('canvas.leaflet-heatmap-layer, canvas.heatmap-canvas');
  if (!c || !c.width || !c.height) return 0;
  const d = c.getContext('2d', {willReadFrequently: true}).getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""


def launch(playwright: Any) -> Any:
    """A Chromium browser from the system package (raises FileNotFoundError naming the fix)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing; install it with `apt-get install chromium`")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
