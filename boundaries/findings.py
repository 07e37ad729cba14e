"""What a validation reports (boundaries/validate.py): the rules it checks against, its findings
(each with a location and, on the map, a shape) and the report; areas in square metres."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from gis.core.settings import Settings
from gis.spatial.crs import from_metric, to_metric

ObjArray = npt.NDArray[np.object_]
# Square metres per square degree never exceed this (equator: 111.32 km x 110.57 km): areas in
# degrees times it bound true areas from above, so the cheap prefilters below never miss a finding.
M2_PER_DEG2_MAX = 1.2309e10


@dataclass(frozen=True)
class Rules:
    sliver_m2: float = 100.0
    tolerance_m2: float = 1.0  # overlaps, gaps and nesting below this are rounding, not findings
    households: dict[str, tuple[int, int]] = field(default_factory=lambda: {"grid": (300, 500), "micro_grid": (50, 80)})

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            sliver_m2=settings.boundary_sliver_m2,
            households={
                "grid": (settings.grid_households_min, settings.grid_households_max),
                "micro_grid": (settings.micro_grid_households_min, settings.micro_grid_households_max),
            },
        )


@dataclass
class Finding:
    kind: str
    severity: str  # "error" | "warning"
    message: str
    code: str | None
    lon: float
    lat: float
    geometry: dict[str, Any] | None = None


@dataclass
class Report:
    layer: str
    features: int
    findings: list[Finding]
    draft_id: int | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "draft_id": self.draft_id,
            "layer": self.layer,
            "features": self.features,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
        }


def _metric(geoms: Any) -> ObjArray:
    def fn(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = to_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), fn), dtype=object)


def _to_lonlat(geom: BaseGeometry) -> BaseGeometry:
    def fn(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = from_metric(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, fn)


def _finding(
    kind: str, severity: str, message: str, code: str | None, where: BaseGeometry, *, metric: bool, draw: bool = True
) -> Finding:
    geom = _to_lonlat(where) if metric else where
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    shape = None
    if draw and geom.geom_type != "Point":
        # Rounded to ~1 cm for the map; an invalid shape is shown as it is.
        shape = mapping(shapely.set_precision(geom, 1e-7) if geom.is_valid else geom)
    return Finding(kind, severity, message, code, round(point.x, 7), round(point.y, 7), shape)


def area_m2(geoms: Any) -> npt.NDArray[np.float64]:
    """Areas in square metres. Topology is computed on the stored degrees (shared vertices stay
    shared; projecting first would bend shared edges apart), and only results are projected."""
    return np.asarray(shapely.area(_metric(np.atleast_1d(np.asarray(geoms, dtype=object)))), dtype=np.float64)
