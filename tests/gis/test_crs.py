from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon

from gis.spatial import crs
from gis.spatial.crs import CoordinateError, InputCRS, UnknownCRSError

JIASHAN_LON, JIASHAN_LAT = np.meshgrid(np.linspace(120.75, 121.10, 15), np.linspace(30.75, 31.05, 13))
CHINA_LON, CHINA_LAT = np.meshgrid(np.linspace(74.0, 134.0, 31), np.linspace(4.0, 53.0, 25))
GRIDS = pytest.mark.parametrize(
    ("lon", "lat"),
    [(JIASHAN_LON, JIASHAN_LAT), (CHINA_LON, CHINA_LAT)],
    ids=["jiashan", "china"],
)
OUTSIDE_CHINA = [(2.3522, 48.8566), (-74.006, 40.7128), (151.2093, -33.8688), (-0.1276, 51.5072)]


@GRIDS
def test_wgs84_gcj02_round_trip_is_within_5_cm(lon: np.ndarray, lat: np.ndarray) -> None:
    back_lon, back_lat = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    error = crs.metres_between(lon, lat, back_lon, back_lat)
    assert error.shape == lon.shape
    assert float(error.max()) < 0.05


@GRIDS
def test_gcj02_wgs84_round_trip_is_within_5_cm(lon: np.ndarray, lat: np.ndarray) -> None:
    # Treat the grid as GCJ-02 input from a phone app.
    back_lon, back_lat = crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(lon, lat))
    assert float(crs.metres_between(lon, lat, back_lon, back_lat).max()) < 0.05


@GRIDS
def test_bd09_round_trips_are_within_5_cm(lon: np.ndarray, lat: np.ndarray) -> None:
    via_bd = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    assert float(crs.metres_between(lon, lat, *via_bd).max()) < 0.05
    via_gcj = crs.bd09_to_gcj02(*crs.gcj02_to_bd09(lon, lat))
    assert float(crs.metres_between(lon, lat, *via_gcj).max()) < 0.05


def test_gcj02_offset_near_jiashan_is_a_few_hundred_metres() -> None:
    shift = crs.metres_between(JIASHAN_LON, JIASHAN_LAT, *crs.wgs84_to_gcj02(JIASHAN_LON, JIASHAN_LAT))
    assert 300.0 < float(shift.min()) <= float(shift.max()) < 600.0
    # Amap coordinates sit to the east and south of WGS-84 ones in this area.
    gcj_lon, gcj_lat = crs.wgs84_to_gcj02(120.92, 30.84)
    assert gcj_lon > 120.92
    assert gcj_lat < 30.84


def test_bd09_adds_a_further_offset_to_gcj02() -> None:
    gcj = crs.wgs84_to_gcj02(120.92, 30.84)
    bd = crs.gcj02_to_bd09(*gcj)
    assert 500.0 < crs.metres_between(*gcj, *bd) < 1000.0
    assert crs.wgs84_to_bd09(120.92, 30.84) == pytest.approx(bd, abs=1e-12)


@pytest.mark.parametrize(("lon", "lat"), OUTSIDE_CHINA)
def test_gcj02_is_identity_outside_china(lon: float, lat: float) -> None:
    assert crs.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert crs.gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_scalar_input_gives_python_floats() -> None:
    lon, lat = crs.wgs84_to_gcj02(120.9, 30.85)
    assert type(lon) is float and type(lat) is float
    lon_i, lat_i = crs.to_wgs84(121, 31, "gcj02")
    assert type(lon_i) is float and type(lat_i) is float
    assert type(crs.metres_between(120.9, 30.85, 121.0, 30.85)) is float


def test_array_input_keeps_shape_and_matches_scalar_results() -> None:
    lon = np.array([[120.8, 120.9], [121.0, 121.05]])
    lat = np.array([[30.8, 30.9], [31.0, 30.95]])
    out_lon, out_lat = crs.wgs84_to_bd09(lon, lat)
    assert isinstance(out_lon, np.ndarray) and out_lon.shape == (2, 2)
    assert out_lat.shape == (2, 2)
    for index in np.ndindex(lon.shape):
        expected = crs.wgs84_to_bd09(float(lon[index]), float(lat[index]))
        assert (out_lon[index], out_lat[index]) == pytest.approx(expected, abs=1e-12)


def test_scalar_and_array_broadcast_together() -> None:
    lons = np.array([120.8, 120.9, 121.0])
    out_lon, out_lat = crs.wgs84_to_gcj02(lons, np.array(30.9))
    assert out_lon.shape == out_lat.shape == (3,)
    assert out_lat[0] != out_lat[2]


def test_non_finite_input_passes_through_without_hanging() -> None:
    lon, lat = crs.gcj02_to_wgs84(np.array([math.nan, 120.9]), np.array([30.9, 30.9]))
    assert math.isnan(lon[0])
    assert lon[1] != 120.9


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("WGS84", InputCRS.wgs84),
        ("wgs-84", InputCRS.wgs84),
        ("EPSG:4326", InputCRS.wgs84),
        ("4326", InputCRS.wgs84),
        ("gcj02", InputCRS.gcj02),
        ("GCJ-02", InputCRS.gcj02),
        ("Amap", InputCRS.gcj02),
        ("bd09", InputCRS.bd09),
        ("BD-09", InputCRS.bd09),
        ("baidu", InputCRS.bd09),
        (" wgs84 ", InputCRS.wgs84),
        (InputCRS.bd09, InputCRS.bd09),
    ],
)
def test_parse_crs_accepts_aliases(alias: str, expected: InputCRS) -> None:
    assert crs.parse_crs(alias) is expected


def test_input_crs_values_are_lowercase_names() -> None:
    assert [member.value for member in InputCRS] == ["wgs84", "gcj02", "bd09"]
    assert InputCRS("gcj02") == "gcj02"
    assert f"{InputCRS.bd09}" == "bd09"


def test_parse_crs_rejects_unknown_names_listing_accepted_ones() -> None:
    with pytest.raises(UnknownCRSError) as info:
        crs.parse_crs("tencent-ish")
    message = str(info.value)
    assert "'tencent-ish'" in message
    assert "gcj-02" in message and "baidu" in message and "epsg:4326" in message
    assert isinstance(info.value, ValueError)


def test_dispatchers_match_the_named_conversions() -> None:
    point = (120.93, 30.86)
    assert crs.to_wgs84(*point, InputCRS.gcj02) == crs.gcj02_to_wgs84(*point)
    assert crs.to_wgs84(*point, "baidu") == crs.bd09_to_wgs84(*point)
    assert crs.to_wgs84(*point, "wgs84") == point
    assert crs.from_wgs84(*point, "amap") == crs.wgs84_to_gcj02(*point)
    assert crs.from_wgs84(*point, InputCRS.bd09) == crs.wgs84_to_bd09(*point)
    with pytest.raises(UnknownCRSError):
        crs.to_wgs84(*point, "osgb36")


def test_geometry_conversion_moves_every_vertex() -> None:
    ring = [(120.90, 30.84), (120.95, 30.84), (120.95, 30.88), (120.90, 30.88)]
    polygon = Polygon(ring, holes=[[(120.91, 30.85), (120.92, 30.85), (120.92, 30.86)]])
    converted = crs.geometry_to_wgs84(polygon, "gcj02")
    assert isinstance(converted, Polygon)
    for (lon, lat), (got_lon, got_lat) in zip(ring, converted.exterior.coords[:-1], strict=True):
        assert (got_lon, got_lat) == pytest.approx(crs.gcj02_to_wgs84(lon, lat), abs=1e-12)
    assert len(converted.interiors) == 1
    restored = crs.geometry_from_wgs84(converted, InputCRS.gcj02)
    assert shapely.equals_exact(restored, polygon, tolerance=1e-6)


def test_geometry_conversion_keeps_z_and_wgs84_is_untouched() -> None:
    point = Point(120.9, 30.85, 12.5)
    converted = crs.geometry_from_wgs84(point, "bd09")
    assert converted.has_z and converted.z == 12.5
    assert (converted.x, converted.y) == pytest.approx(crs.wgs84_to_bd09(120.9, 30.85))
    assert crs.geometry_to_wgs84(point, "wgs84") is point


def test_transform_geometry_accepts_any_array_function() -> None:
    def shift(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return lon + 1.0, lat - 1.0

    moved = crs.transform_geometry(Point(10.0, 20.0), shift)
    assert (moved.x, moved.y) == (11.0, 19.0)


def test_metric_projection_round_trips_and_preserves_distance() -> None:
    assert crs.METRIC_EPSG == 4549
    x, y = crs.to_metric(JIASHAN_LON, JIASHAN_LAT)
    # CM 120E with a 500 km false easting: Jiashan is 70-110 km east of it.
    assert 560_000 < float(x.min()) < float(x.max()) < 615_000
    lon, lat = crs.from_metric(x, y)
    assert float(crs.metres_between(JIASHAN_LON, JIASHAN_LAT, lon, lat).max()) < 1e-3
    planar = math.hypot(float(x[0, -1] - x[0, 0]), float(y[0, -1] - y[0, 0]))
    geodesic = crs.metres_between(
        float(JIASHAN_LON[0, 0]),
        float(JIASHAN_LAT[0, 0]),
        float(JIASHAN_LON[0, -1]),
        float(JIASHAN_LAT[0, -1]),
    )
    assert planar == pytest.approx(geodesic, rel=5e-4)


def test_metres_between_known_distances() -> None:
    # One degree of latitude at the equator on WGS-84.
    assert crs.metres_between(0.0, 0.0, 0.0, 1.0) == pytest.approx(110_574.4, abs=1.0)
    distances = crs.metres_between(np.array([0.0, 120.9]), np.array([0.0, 30.8]), np.array(0.0), np.array(0.0))
    assert distances.shape == (2,)
    assert distances[0] == 0.0


@pytest.mark.parametrize(
    ("lon", "lat", "fragment"),
    [
        (math.nan, 30.0, "lon=nan is not a finite number"),
        (120.0, math.inf, "lat=inf is not a finite number"),
        (180.5, 30.0, "lon=180.5 is out of range [-180, 180]"),
        (120.0, -90.01, "lat=-90.01 is out of range [-90, 90]"),
        (np.array([120.0, 121.0, 200.0]), np.array([30.0, 30.0, 30.0]), "lon[2]=200.0"),
        (np.array([120.0]), np.array([[30.0, 95.0]]), "lat[(0, 1)]=95.0"),
        ("east", 30.0, "lon='east' is not a number"),
    ],
)
def test_check_lonlat_names_the_bad_value(lon: object, lat: object, fragment: str) -> None:
    with pytest.raises(CoordinateError) as info:
        crs.check_lonlat(lon, lat)
    assert fragment in str(info.value)


def test_check_lonlat_accepts_valid_and_boundary_values() -> None:
    crs.check_lonlat(120.9, 30.85)
    crs.check_lonlat(np.array([-180.0, 180.0]), np.array([-90.0, 90.0]))


def test_inverse_terminates_at_the_china_box_edge() -> None:
    # GCJ-02 jumps ~360 m at lon 72.004, so GCJ targets just inside the edge
    # have no WGS-84 preimage; the inverse must still stop and return the best
    # estimate, while targets clear of the gap are solved exactly.
    lon = np.linspace(72.0, 72.02, 41)
    lat = np.full(41, 40.0)
    wgs_lon, wgs_lat = crs.gcj02_to_wgs84(lon, lat)
    assert np.isfinite(wgs_lon).all() and np.isfinite(wgs_lat).all()
    misfit = crs.metres_between(lon, lat, *crs.wgs84_to_gcj02(wgs_lon, wgs_lat))
    assert float(misfit[:8].max()) < 0.05  # outside the box: identity
    assert float(misfit[-20:].max()) < 0.05  # well inside: exact
    assert float(misfit.max()) < 400.0  # in the gap: no worse than the jump
