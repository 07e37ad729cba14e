"""Counties of the deployment: the configured list (``GRIDMAP_COUNTIES``), the home county, and
the ``county_code`` every point row carries (migration 0032).

A county code is six digits, and every area code starts with its county's (town 9, village 12,
... digits; police station 330421P01), so a row's county is the first six characters of its town
code, else of its station code. A row outside every county is counted in the home county: the
first configured county (``gridmap_home_county()`` in the database, written from the setting), so
``county_code`` is never NULL and storage partitioned or sharded by county has a place for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from gis.core.settings import get_settings

# The point tables the assignment trigger fills (gis/sql/assign.sql), which carry county_code.
COUNTY_TABLES = ("incidents", "buildings", "addresses", "hazards", "visits")


class CountyError(ValueError):
    """A county code is malformed or not configured; ``code`` names it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"county {code!r} {reason}")
        self.code = code


def configured() -> list[str]:
    return list(get_settings().counties)


def home_county() -> str:
    return configured()[0]


def check_county(code: str, counties: Sequence[str] | None = None) -> str:
    """``code`` when it is a configured county; CountyError naming it otherwise."""
    known = list(counties) if counties is not None else configured()
    if len(code) != 6 or not code.isdigit():
        raise CountyError(code, "is not a six-digit county code")
    if code not in known:
        raise CountyError(code, f"is not a county of this deployment ({', '.join(known)})")
    return code


def home_county_function_sql(code: str) -> str:
    """``gridmap_home_county()``: the county of rows outside every county. The session setting
    ``gridmap.home_county`` overrides the code written here (a writer that knows better)."""
    if len(code) != 6 or not code.isdigit():
        raise CountyError(code, "is not a six-digit county code")
    # The code is checked to be six digits above: formatting it into the body is safe.
    return (
        "CREATE OR REPLACE FUNCTION gridmap_home_county() RETURNS varchar LANGUAGE sql STABLE PARALLEL SAFE "
        "SET search_path = public AS "
        f"$$ SELECT coalesce(nullif(current_setting('gridmap.home_county', true), ''), '{code}')::varchar(6) $$"
    )


def county_codes(
    town_code: npt.ArrayLike, station_code: npt.ArrayLike, home: str | None = None
) -> npt.NDArray[np.object_]:
    """The county of each row (as the trigger computes it) from its town and station codes."""
    towns = pd.Series(np.asarray(town_code, dtype=object), dtype=object)
    stations = pd.Series(np.asarray(station_code, dtype=object), dtype=object)
    county = towns.str[:6].fillna(stations.str[:6]).fillna(home or home_county())
    return county.to_numpy(dtype=object)
