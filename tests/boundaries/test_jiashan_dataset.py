"""Full-scale checks of the Jiashan demo dataset (built once per module, ~10 s)."""

from __future__ import annotations

import hashlib
import json
import re
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from demo.jiashan import JiashanDataset, build_dataset
from demo.jiashan.dataset import DEFAULT_REFERENCE
from demo.jiashan.incidents import (
    INCIDENT_CATEGORIES,
    INCIDENT_SOURCES,
    INCIDENT_STATUSES,
    Hotspots,
    generate_incidents,
)
from demo.jiashan.names import id_check_char
from demo.jiashan.outline import load_divisions, load_outline_gcj02
from gis.spatial.crs import geometry_from_wgs84, to_metric

pytestmark = pytest.mark.slow

METRIC = "EPSG:4549"
INCIDENTS = 282_347
POLYGON_LAYERS = ("towns", "villages", "grids", "micro_grids", "stations", "beats")


@pytest.fixture(scope="module")
def data() -> JiashanDataset:
    return build_dataset(42, incidents=INCIDENTS)


@pytest.fixture(scope="module")
def fingerprint(data: JiashanDataset) -> dict[str, str]:
    return _fingerprint(data)


def _metric(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(METRIC)


def _fingerprint(ds: JiashanDataset) -> dict[str, str]:
    out = {}
    for name in (
        "county",
        "towns",
        "villages",
        "grids",
        "micro_grids",
        "stations",
        "beats",
        "staff",
        "org_units",
        "buildings",
        "addresses",
        "incidents",
        "roads",
    ):
        frame = getattr(ds, name)
        digest = hashlib.sha256()
        for col in frame.columns:
            values = frame[col]
            if isinstance(frame, gpd.GeoDataFrame) and col == frame.geometry.name:
                digest.update(b"".join(shapely.to_wkb(values.values)))
            elif col == "attrs":
                digest.update(json.dumps(values.tolist(), sort_keys=True, default=str).encode())
            else:
                digest.update(pd.util.hash_pandas_object(values, index=True).to_numpy().tobytes())
        out[name] = digest.hexdigest()
    return out


# --- polygons ---------------------------------------------------------------------


@pytest.mark.parametrize("layer", POLYGON_LAYERS)
def test_every_layer_is_a_valid_coverage_in_wgs84(data: JiashanDataset, layer: str) -> None:
    frame = getattr(data, layer)
    assert frame.crs.to_epsg() == 4326
    geoms = frame.geometry.values
    assert bool(shapely.is_valid(geoms).all())
    assert (frame.geom_type == "MultiPolygon").all()
    assert shapely.coverage_is_valid(geoms)
    assert frame["code"].is_unique
    assert all(a["synthetic"] is True for a in frame["attrs"])


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        ("towns", "county"),
        ("villages", "towns"),
        ("grids", "villages"),
        ("micro_grids", "grids"),
        ("beats", "stations"),
        ("stations", "county"),
    ],
)
def test_children_union_to_their_parent(data: JiashanDataset, child: str, parent: str) -> None:
    kids = _metric(getattr(data, child))
    parents = _metric(getattr(data, parent)).set_index("code")
    if parent == "county":
        groups = {parents.index[0]: kids.geometry.values}
    else:
        assert kids["parent_code"].isin(parents.index).all()
        groups = {code: g.geometry.values for code, g in kids.groupby("parent_code")}
        assert set(groups) == set(parents.index)
    for code, members in groups.items():
        whole = parents.geometry[code]
        union = shapely.coverage_union_all(members)
        assert shapely.symmetric_difference(union, whole).area < 1.0, code
        assert shapely.hausdorff_distance(union, whole) < 1.0, code
        outside = shapely.area(shapely.difference(members, whole))
        assert outside.max() < 0.01, code


def test_villages_sit_in_their_real_towns(data: JiashanDataset) -> None:
    divisions = load_divisions()
    assert data.towns["code"].tolist() == divisions.towns["code"].tolist()
    real = dict(zip(divisions.villages["code"], divisions.villages["parent_code"], strict=True))
    assert dict(zip(data.villages["code"], data.villages["parent_code"], strict=True)) == real


def test_town_area_follows_village_count(data: JiashanDataset) -> None:
    area = _metric(data.towns).area.to_numpy()
    count = data.villages.groupby("parent_code").size().reindex(data.towns["code"]).to_numpy()
    ratio = (area / area.sum()) / (count / count.sum())
    assert ratio.min() > 0.6 and ratio.max() < 1.6, ratio
    assert 480e6 < area.sum() < 530e6


def test_counts(data: JiashanDataset) -> None:
    assert len(data.towns) == 9
    assert len(data.villages) == 174
    assert 740 <= len(data.grids) <= 780
    assert 5000 <= len(data.micro_grids) <= 6000
    assert 9 <= len(data.stations) <= 11
    assert 100 <= len(data.beats) <= 160
    assert len(data.addresses) >= 100_000
    assert len(data.incidents) == INCIDENTS
    assert len(data.neighbours) >= 3


def test_codes_and_names(data: JiashanDataset) -> None:
    village_name = dict(zip(data.villages["code"], data.villages["name"], strict=True))
    town_name = dict(zip(data.towns["code"], data.towns["name"], strict=True))
    for code, name, parent in data.grids[["code", "name", "parent_code"]].itertuples(index=False):
        assert re.fullmatch(rf"{parent}\d{{3}}", code)
        k = int(code[-3:])
        assert name == f"{town_name[parent[:9]]}{village_name[parent]}第{k}网格"
    grid_name = dict(zip(data.grids["code"], data.grids["name"], strict=True))
    for code, name, parent in data.micro_grids[["code", "name", "parent_code"]].itertuples(index=False):
        assert re.fullmatch(rf"{parent}\d{{2}}", code)
        assert name == f"{grid_name[parent]}-{int(code[-2:])}微网格"
    assert data.grids["name"].iloc[0].startswith("魏塘街道")
    assert all(re.fullmatch(r"330421P\d{2}", c) for c in data.stations["code"])
    assert all(n.endswith("派出所") for n in data.stations["name"])
    assert "魏塘派出所" in set(data.stations["name"])
    assert (data.beats["code"].str[:9] == data.beats["parent_code"]).all()
    assert data.beats["code"].str.fullmatch(r"330421P\d{4}").all()


# --- households and buildings ------------------------------------------------------


def test_households_ranges_and_sums(data: JiashanDataset) -> None:
    assert data.grids["households"].between(300, 500).all()
    assert data.micro_grids["households"].between(50, 80).all()
    by_grid = data.micro_grids.groupby("parent_code")["households"].sum()
    assert (by_grid.reindex(data.grids["code"]).to_numpy() == data.grids["households"].to_numpy()).all()
    by_village = data.grids.groupby("parent_code")["households"].sum()
    assert (by_village.reindex(data.villages["code"]).to_numpy() == data.villages["households"].to_numpy()).all()


def test_buildings_add_up_to_micro_grid_households_by_spatial_join(data: JiashanDataset) -> None:
    points = gpd.GeoDataFrame(
        data.buildings[["households"]],
        geometry=gpd.points_from_xy(data.buildings["lon"], data.buildings["lat"]),
        crs=4326,
    )
    joined = gpd.sjoin(points, data.micro_grids[["code", "geometry"]], predicate="within", how="inner")
    assert len(joined) == len(points)  # every building in exactly one micro-grid
    assert joined.index.is_unique
    total = joined.groupby("code")["households"].sum().reindex(data.micro_grids["code"], fill_value=0)
    assert (total.to_numpy() == data.micro_grids["households"].to_numpy()).all()


def test_point_tables_carry_no_containing_codes(data: JiashanDataset) -> None:
    for name in ("buildings", "addresses", "incidents"):
        frame = getattr(data, name)
        public = [c for c in frame.columns if not c.startswith("_gen_")]
        assert not [c for c in public if c.endswith("code") or c in ("town", "village", "grid", "beat")], name
        assert frame["lon"].dtype == np.float64 and frame["lat"].dtype == np.float64


def test_address_formats(data: JiashanDataset) -> None:
    a = data.addresses
    assert a["full_text"].is_unique
    prefix = "浙江省嘉兴市嘉善县"
    assert a["full_text"].str.startswith(prefix).all()
    room = a[a["precision"] == "room"]
    assert room["full_text"].str.fullmatch(rf"{prefix}\S+?(街道|镇)\S+?(路|街|大道)\d+号\d+幢\d+单元\d+室").all()
    assert room[["road", "house_no", "building_no", "unit_no", "room_no"]].notna().all().all()
    assert room["group_no"].isna().all()
    house = a[a["precision"] == "house"]
    rural = house[house["group_no"].notna()]
    urban = house[house["group_no"].isna()]
    assert rural["full_text"].str.fullmatch(rf"{prefix}\S+?(街道|镇)\S+?村\d+组\d+号").all()
    assert rural["road"].isna().all()
    assert urban["full_text"].str.fullmatch(rf"{prefix}\S+?(街道|镇)\S+?(路|街|大道)\d+号").all()
    assert len(rural) > 10_000 and len(urban) > 1_000 and len(room) > 50_000
    assert (a["precision"] == "building").sum() > 1_000
    # Room addresses share their building's point; every building has one own address.
    b = data.buildings
    assert np.allclose(room["lon"], b["lon"].to_numpy()[room["building"].to_numpy()])
    assert (a[a["precision"] != "room"]["building"].value_counts() == 1).all()
    assert a[a["precision"] != "room"]["building"].nunique() == len(b)
    room_count = room.groupby("building").size()
    assert (room_count == b.loc[room_count.index, "households"]).all()


def test_rental_buildings_and_rental_villages(data: JiashanDataset) -> None:
    b = data.buildings
    let = b[b["rental"]]
    assert 0.05 < len(let) / len(b) < 0.5
    assert let[["landlord_name", "landlord_phone", "landlord_id_card", "wiring"]].notna().all().all()
    assert b.loc[~b["rental"], "landlord_name"].isna().all()
    assert set(let["escape_window"]) <= {"ok", "missing", "blocked"}
    assert set(let["ebike_charging"]) <= {"ok", "fly_line", "indoor"}
    assert set(let["wiring"]) <= {"ok", "private", "aged"}
    # The risk level and the last inspection come from the year of inspections (demo.jiashan.inspections).
    assert "risk_level" not in b and "last_inspected_at" not in b
    assert (b["new_residents"] == b["tenants"]).all() and (b["residents"] >= b["new_residents"]).all()
    attrs = pd.DataFrame(data.villages["attrs"].tolist())
    assert 3 <= attrs["rental_village"].sum() <= 8
    chief = attrs[attrs["chief_rental_village"]].iloc[0]
    assert 7000 <= chief["new_residents"] <= 8000
    assert 8000 <= chief["residents"] <= 10500
    # Village figures are the sums of their buildings (private column used only here).
    sums = b.groupby("_gen_village")["new_residents"].sum().reindex(data.villages["code"], fill_value=0)
    assert (sums.to_numpy() == attrs["new_residents"].to_numpy()).all()


# --- staff ---------------------------------------------------------------------------


def test_staff(data: JiashanDataset) -> None:
    s = data.staff
    assert list(s.columns) == [
        "name", "phone", "id_card", "status", "role", "layer", "area_code", "org_unit", "starts_on", "ends_on",
    ]  # fmt: skip
    current = s[s["status"] == "active"]
    roles = current["role"].value_counts()
    assert roles["grid_leader"] == len(data.grids)
    assert roles["grid_worker"] == 776
    assert roles["aux_police"] == 628
    assert roles["community_police"] == 42
    assert roles["beat_officer"] == len(data.beats)
    assert roles["chief_grid_leader"] == len(data.villages)  # 42 of them community police officers
    leaders = current[current["role"] == "micro_grid_leader"]
    assert leaders["area_code"].is_unique and 0.9 < len(leaders) / len(data.micro_grids) < 0.95
    assert current.loc[current["role"] == "aux_police", "area_code"].nunique() == 628
    assert set(current.loc[current["role"] == "grid_worker", "area_code"]) == set(data.grids["code"])
    # The community police officer is the key village's chief grid leader: one person, two postings.
    police = current[current["role"] == "community_police"]
    assert (police["layer"] == "village").all() and police["area_code"].nunique() == 42
    chiefs = current[current["role"] == "chief_grid_leader"].set_index("area_code")["id_card"]
    assert (chiefs.loc[police["area_code"]].to_numpy() == police["id_card"].to_numpy()).all()
    key = set(data.org_units.loc[data.org_units["is_key"], "area_code"])
    assert key == set(police["area_code"])
    layers = {"grid": data.grids, "village": data.villages, "micro_grid": data.micro_grids, "beat": data.beats}
    for layer, frame in layers.items():
        assert s.loc[s["layer"] == layer, "area_code"].isin(frame["code"]).all()
    people = s.drop_duplicates("id_card")
    assert people["phone"].str.fullmatch(r"1[3-9]\d{9}").all() and people["phone"].is_unique
    assert people["id_card"].str.fullmatch(r"330421(19[6-9]\d|200[0-3])\d{4}\d{3}[\dX]").all()
    assert all(id_check_char(i[:17]) == i[17] for i in people["id_card"])
    # Former leaders: each ended the day before the current leader of the grid began.
    former = s[s["status"] == "left"]
    assert len(former) and (former["role"] == "grid_leader").all()
    start = current[current["role"] == "grid_leader"].set_index("area_code")["starts_on"]
    ended = pd.to_datetime(former["ends_on"]) + pd.Timedelta(days=1)
    assert (ended.dt.date.astype(str).to_numpy() == start.loc[former["area_code"]].to_numpy()).all()
    units = data.org_units
    assert units["code"].is_unique and (units["kind"] == "town_centre").sum() == len(data.towns)
    assert (units["kind"] == "police_station").sum() == len(data.stations)


# --- police beats are independent of grids -------------------------------------------------


def test_beat_edges_do_not_follow_grid_edges(data: JiashanDataset) -> None:
    # Probe the beat edges every 25 m; off the county edge, almost none may lie on a grid edge.
    county_edge = _metric(data.county).boundary.iloc[0]
    beat_lines = _metric(data.beats).boundary.values
    lengths = shapely.length(beat_lines)
    owner = np.repeat(np.arange(len(beat_lines)), (lengths // 25).astype(int))
    along = np.concatenate([np.arange(len_ // 25) * 25.0 + 12.5 for len_ in lengths])
    probes = shapely.line_interpolate_point(beat_lines[owner], along)
    probes = probes[shapely.distance(probes, county_edge) > 1.0]
    assert len(probes) > 10_000
    grid_lines = shapely.STRtree(_metric(data.grids).boundary.values)
    _, gap = grid_lines.query_nearest(probes, return_distance=True, all_matches=False)
    assert (gap < 1.0).mean() < 0.05


# --- real outline -------------------------------------------------------------------


def test_county_outline_is_the_converted_real_outline(data: JiashanDataset) -> None:
    raw = load_outline_gcj02("330421")
    county = data.county.geometry.iloc[0]
    back = geometry_from_wgs84(county, "gcj02")  # re-apply the offset: should land on the raw data

    def metres(geom: shapely.Geometry) -> shapely.Geometry:
        # Treat the coordinates as lon/lat for measuring only.
        return shapely.transform(geom, lambda c: np.column_stack(to_metric(c[:, 0], c[:, 1])))

    assert shapely.hausdorff_distance(metres(back), metres(raw)) < 1.0
    assert abs(metres(back).area - metres(raw).area) < 0.0001 * metres(raw).area
    shift = shapely.distance(metres(raw).centroid, metres(county).centroid)
    assert 300.0 < shift < 700.0


def test_neighbours_touch_the_county(data: JiashanDataset) -> None:
    county = data.county.geometry.iloc[0]
    assert list(data.neighbours.columns) == ["code", "name", "geometry"]
    for geom in data.neighbours.geometry:
        assert shapely.distance(geom, county) < 0.005  # degrees, a few hundred metres at most


# --- incidents -----------------------------------------------------------------------------


def test_incidents_table(data: JiashanDataset) -> None:
    inc = data.incidents
    assert set(inc["category"]) == {c.code for c in INCIDENT_CATEGORIES}
    assert set(inc["source"]) == set(INCIDENT_SOURCES)
    assert set(inc["status"]) == set(INCIDENT_STATUSES)
    start = DEFAULT_REFERENCE - pd.Timedelta(days=365)
    assert (inc["reported_at"] > start).all() and (inc["reported_at"] <= DEFAULT_REFERENCE).all()
    assert inc["reported_at"].is_monotonic_increasing
    assert inc["external_id"].is_unique
    closed = inc["status"] == "closed"
    assert (inc["closed_at"].notna() == closed).all()
    assert (inc.loc[closed, "closed_at"] >= inc.loc[closed, "reported_at"]).all()
    assert (inc.loc[closed, "closed_at"] <= DEFAULT_REFERENCE).all()
    due = inc["deadline_at"] <= DEFAULT_REFERENCE
    assert abs(closed[due].mean() - 0.993) < 0.0005
    young = inc[~due]
    assert young["status"].nunique() >= 5
    share = inc["source"].value_counts(normalize=True)
    assert 0.3 < share["grid_patrol"] < 0.6 and share.min() > 0.08


def test_incident_rhythm_and_clusters(data: JiashanDataset) -> None:
    inc = data.incidents
    hour = inc["reported_at"].dt.hour
    assert (hour < 6).mean() < 0.06
    patrol = inc[inc["source"] == "grid_patrol"]["reported_at"].dt.day_of_week
    weekday_rate = (patrol < 5).sum() / 5
    weekend_rate = (patrol >= 5).sum() / 2
    assert weekend_rate < 0.6 * weekday_rate
    # Clustered: the busiest 5 % of 500 m cells hold far more than 5 % of incidents.
    x, y = to_metric(inc["lon"].to_numpy(), inc["lat"].to_numpy())
    cells = pd.Series(np.floor(x / 500).astype(int) * 100_000 + np.floor(y / 500).astype(int)).value_counts()
    top = cells.iloc[: max(1, len(cells) // 20)].sum() / len(inc)
    assert top > 0.25


def test_a_few_incidents_fall_just_outside_the_county(data: JiashanDataset) -> None:
    county = _metric(data.county).geometry.iloc[0]
    x, y = to_metric(data.incidents["lon"].to_numpy(), data.incidents["lat"].to_numpy())
    inside = shapely.contains_xy(county, x, y)
    outside = ~inside
    assert 0.0005 < outside.mean() < 0.002
    gap = shapely.distance(county, shapely.points(x[outside], y[outside]))
    assert gap.max() < 50.0


def test_a_million_incidents_are_fast(data: JiashanDataset) -> None:
    county = _metric(data.county).geometry.iloc[0]
    bx, by = to_metric(data.buildings["lon"].to_numpy(), data.buildings["lat"].to_numpy())
    towns = _metric(data.towns)
    seats = shapely.get_coordinates(towns.representative_point().values)
    spots = Hotspots(
        centres={"rental_village": seats[:3], "industrial_park": seats[3:5], "market": seats, "town_centre": seats},
        weights={
            "rental_village": np.ones(3),
            "industrial_park": np.ones(2),
            "market": np.ones(9),
            "town_centre": np.ones(9),
        },
        sigma={"rental_village": 350.0, "industrial_park": 600.0, "market": 150.0, "town_centre": 450.0},
    )
    weight = np.full(len(bx), 1.0 / len(bx))
    started = time.process_time()
    table = generate_incidents(
        1_000_000, county, spots, np.column_stack([bx, by]), weight, DEFAULT_REFERENCE, np.random.default_rng(1)
    )
    assert time.process_time() - started < 15.0
    assert len(table) == 1_000_000 and table["external_id"].is_unique


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_output(data: JiashanDataset, fingerprint: dict[str, str]) -> None:
    # CPU time, not wall time: other jobs on a shared 2-core machine must not fail this.
    started = time.process_time()
    again = build_dataset(42, incidents=INCIDENTS)
    assert time.process_time() - started < 60.0
    assert _fingerprint(again) == fingerprint


def test_incident_count_leaves_other_tables_alone(fingerprint: dict[str, str]) -> None:
    small = build_dataset(42, incidents=1000)
    full, part = fingerprint, _fingerprint(small)
    assert {k: v for k, v in full.items() if k != "incidents"} == {k: v for k, v in part.items() if k != "incidents"}
    assert len(small.incidents) == 1000
