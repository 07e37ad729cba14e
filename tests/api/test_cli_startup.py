"""The ``gridmap`` command starts without importing the heavy libraries it does not need.

Each check runs in a fresh interpreter: in this one pytest and the fixtures have imported
everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("geopandas", "pandas", "folium", "shapely", "pyproj", "sqlalchemy", "alembic", "geoalchemy2")


def _loaded_after(code: str, env: dict[str, str] | None = None) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """Run ``code`` in a new interpreter; return which of HEAVY it left in sys.modules."""
    script = (
        f"import json, sys\n{code}\nprint('LOADED=' + json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("LOADED=")]
    assert marker, f"the script failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(marker[-1].removeprefix("LOADED=")), proc


def test_help_imports_no_heavy_library() -> None:
    loaded, proc = _loaded_after(
        "import api.cli\nsys.argv = ['gridmap', '--help']\ntry:\n    api.cli.main()\nexcept SystemExit:\n    pass\n"
    )
    assert "map" in proc.stdout and "export" in proc.stdout  # the help was printed
    assert loaded == []


def test_every_subcommand_help_imports_no_heavy_library() -> None:
    groups = ("boundaries", "db", "import", "export", "incidents", "keys", "map", "seed", "verify")
    calls = "".join(
        f"sys.argv = ['gridmap', {g!r}, '--help']\ntry:\n    api.cli.main()\nexcept SystemExit:\n    pass\n"
        for g in groups
    )
    loaded, _ = _loaded_after("import api.cli\n" + calls)
    assert loaded == []


def test_map_command_leaves_pandas_and_geopandas_out(database_url: str) -> None:
    # The test database has no boundaries, so the command stops with its one-line error; by then
    # it has imported everything a page build needs.
    loaded, proc = _loaded_after(
        "from api.cli import main\n"
        "sys.argv = ['gridmap', 'map', 'command-center', '--out', '/dev/null']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n",
        env={"GRIDMAP_DATABASE_URL": database_url},
    )
    assert "no boundary generation is published yet" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "folium" in loaded and "sqlalchemy" in loaded and "shapely" in loaded
    assert not {"pandas", "geopandas", "pyproj", "alembic", "geoalchemy2"} & set(loaded)


def test_folium_works_without_pandas() -> None:
    loaded, proc = _loaded_after(
        "from api.cli.maps import import_folium_without_pandas\n"
        "import_folium_without_pandas()\n"
        "from maps import layers\n"
        "from maps.page import PageContext\n"
        "m = layers.base_map(PageContext(), (120.7, 30.7, 121.1, 31.0))\n"
        "html = m.get_root().render()\n"
        "assert 'fitBounds' in html, html[:500]\n"
        "import pandas\n"  # still importable afterwards
        "print('PANDAS=' + pandas.__name__)\n"
    )
    assert "PANDAS=pandas" in proc.stdout
    assert "folium" in loaded


def test_help_name_lists_match_their_modules() -> None:
    from api.cli import _names
    from gis.bulk import SPECS
    from gis.outputs.exportquery import LAYER_NAMES
    from gis.spatial.verify import POINT_TABLES

    assert LAYER_NAMES == _names.EXPORT_LAYERS
    assert tuple(SPECS) == _names.IMPORT_KINDS
    assert POINT_TABLES == _names.POINT_TABLES
