"""Synthetic buildings (建筑/房屋) and their standard addresses (标准地址).

Every micro-grid's households are spread over buildings generated inside it,
so counting building households per micro-grid gives the micro-grid's figure:

* communities (社区): apartment blocks in one compound per micro-grid
  (``中山路128号3幢``, each household a ``…2单元301室`` room address) plus a
  few street-front houses (``中山路131号``);
* villages (村): rural houses clustered in hamlets, addressed by village
  group (``丁栅村3组15号``).

Points are kept 3 m inside their micro-grid so that the conversion to WGS-84
cannot move one across an edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from demo.jiashan.allocation import split_total
from demo.jiashan.layers import AdminLayers
from demo.jiashan.names import PersonFactory
from demo.jiashan.outline import CITY_NAME, COUNTY_NAME, PROVINCE_NAME
from demo.jiashan.partition import sample_in_polygon
from demo.jiashan.rental import add_rental_fields
from demo.jiashan.roads import NumberBook, Road, locate, plan_roads, road_lines

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

ADDRESS_PREFIX = PROVINCE_NAME + CITY_NAME + COUNTY_NAME
INSET_M = 3.0


@dataclass(frozen=True)
class BuildingsResult:
    buildings: pd.DataFrame  # x, y in EPSG:4549 plus attributes; lon/lat added by the caller
    addresses: pd.DataFrame  # building (row of buildings) + address fields, no coordinates yet
    village_stats: pd.DataFrame  # per village code: buildings, rental_buildings, residents, new_residents
    roads: pd.DataFrame  # name, kind, town_code, geometry: road lines in EPSG:4549 clipped to their town


def _sizes_summing_to(total: int, rng: np.random.Generator, mean_extra: float, largest: int) -> IntArray:
    """Household counts per house (1 + Poisson, capped) that add up to ``total``."""
    draws = np.minimum(1 + rng.poisson(mean_extra, total), largest)
    reach = np.cumsum(draws)
    cut = int(np.searchsorted(reach, total))
    sizes = draws[: cut + 1].copy()
    sizes[-1] = total - (int(reach[cut - 1]) if cut > 0 else 0)
    return sizes


def _hamlet_points(area: shapely.Geometry, count: int, rng: np.random.Generator) -> FloatArray:
    """Rural houses gather in a few hamlets (自然村) rather than spreading evenly."""
    centres = sample_in_polygon(area, int(rng.integers(1, 4)), rng)
    spread = rng.uniform(40.0, 90.0)
    found: list[FloatArray] = []
    have = 0
    for _ in range(8):
        pick = centres[rng.integers(len(centres), size=2 * count)]
        pts = pick + rng.normal(0.0, spread, pick.shape)
        pts = pts[shapely.contains_xy(area, pts[:, 0], pts[:, 1])]
        found.append(pts)
        have += len(pts)
        if have >= count:
            break
    if have < count:
        found.append(sample_in_polygon(area, count - have, rng))
    return np.concatenate(found)[:count]


def _generate_shapes(layers: AdminLayers, rng: np.random.Generator) -> pd.DataFrame:
    """One row per building: kind, households, point, micro-grid row."""
    micro = layers.micro_grids
    village_row = {code: i for i, code in enumerate(layers.villages["code"])}
    micro_village = np.array([village_row[c[:12]] for c in micro["code"]])
    village_attrs = layers.villages["attrs"].tolist()
    insets = shapely.buffer(micro.geometry.values, -INSET_M)
    parts: list[pd.DataFrame] = []
    for m, (hh, inset, full) in enumerate(zip(micro["households"], insets, micro.geometry.values, strict=True)):
        area = inset if not inset.is_empty else full
        shapely.prepare(area)
        attrs = village_attrs[micro_village[m]]
        if attrs["kind"] == "community":
            street_hh = int(round(hh * rng.uniform(0.05, 0.2)))
            block_hh = int(hh) - street_hh
            blocks = max(1, int(round(block_hh / rng.uniform(24.0, 48.0))))
            block_sizes = split_total(block_hh, blocks, 1, block_hh, rng)
            street_sizes = _sizes_summing_to(street_hh, rng, 0.6, 3) if street_hh else np.empty(0, np.int64)
            sizes = np.concatenate([block_sizes, street_sizes])
            kinds = ["apartment"] * blocks + ["street_house"] * len(street_sizes)
            points = sample_in_polygon(area, len(sizes), rng)
        else:
            extra = 0.25 if attrs["rental_village"] else 0.8
            sizes = _sizes_summing_to(int(hh), rng, extra, 5)
            kinds = ["rural_house"] * len(sizes)
            points = _hamlet_points(area, len(sizes), rng)
        parts.append(
            pd.DataFrame(
                {"kind": kinds, "households": sizes, "x": points[:, 0], "y": points[:, 1], "_gen_micro_row": m}
            )
        )
    shapes = pd.concat(parts, ignore_index=True)
    shapes["_gen_village_row"] = micro_village[shapes["_gen_micro_row"].to_numpy()]
    return shapes


def _apartment_layout(households: IntArray, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Units (单元) and floors per apartment block, roomy enough for its households."""
    units = np.where(households <= 12, 1, rng.integers(2, 4, len(households)))
    floors = np.minimum(np.ceil(households / (2 * units)).astype(np.int64) + rng.integers(0, 3, len(households)), 33)
    floors = np.maximum(floors, np.ceil(households / (2 * units)).astype(np.int64))
    return units.astype(np.int64), floors


def _room_rows(buildings: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One room address per household of each apartment block (floor*100 + door)."""
    blocks = buildings[buildings["kind"] == "apartment"]
    rows: list[IntArray] = []
    for b, hh, units, floors in zip(
        blocks.index.to_numpy(), blocks["households"], blocks["units"], blocks["floors"], strict=True
    ):
        slots = rng.choice(int(units) * int(floors) * 2, size=int(hh), replace=False)
        slots.sort()
        unit = slots // (int(floors) * 2) + 1
        floor = (slots % (int(floors) * 2)) // 2 + 1
        door = slots % 2 + 1
        rows.append(np.column_stack([np.full(len(slots), b), unit, floor * 100 + door]))
    table = np.concatenate(rows) if rows else np.empty((0, 3), np.int64)
    return pd.DataFrame(table, columns=["building", "unit_no", "room_no"])


def _urban_numbers(
    shapes: pd.DataFrame,
    town_code_of: npt.NDArray[np.object_],
    town_order: list[str],
    roads: list[list[Road]],
) -> tuple[npt.NDArray[np.object_], IntArray, IntArray]:
    """Road, house number and block number (幢) of urban buildings; zeros/None elsewhere.

    The blocks of one micro-grid form a compound sharing one gate number;
    each street house gets its own number.  Numbers never repeat on a road.
    """
    road_col = np.full(len(shapes), None, dtype=object)
    house_col = np.zeros(len(shapes), dtype=np.int64)
    building_col = np.zeros(len(shapes), dtype=np.int64)
    kind = shapes["kind"].to_numpy()
    micro_row = shapes["_gen_micro_row"].to_numpy()
    x, y = shapes["x"].to_numpy(), shapes["y"].to_numpy()
    book = NumberBook()
    for t, code in enumerate(town_order):
        in_town = town_code_of == code
        blocks = np.flatnonzero(in_town & (kind == "apartment"))
        if len(blocks):
            compounds = pd.DataFrame({"row": blocks, "m": micro_row[blocks], "x": x[blocks], "y": y[blocks]})
            gates = compounds.groupby("m", sort=True)[["x", "y"]].mean()
            names, numbers = locate(roads[t], gates["x"].to_numpy(), gates["y"].to_numpy())
            gate_of = dict(zip(gates.index.tolist(), zip(names, numbers.tolist(), strict=True), strict=True))
            claimed = {m: book.claim(name, number) for m, (name, number) in gate_of.items()}
            road_col[blocks] = [gate_of[m][0] for m in compounds["m"]]
            house_col[blocks] = [claimed[m] for m in compounds["m"]]
            building_col[blocks] = compounds.groupby("m", sort=False).cumcount().to_numpy() + 1
        street = np.flatnonzero(in_town & (kind == "street_house"))
        if len(street):
            names, numbers = locate(roads[t], x[street], y[street])
            road_col[street] = names
            house_col[street] = [book.claim(n, k) for n, k in zip(names, numbers.tolist(), strict=True)]
    return road_col, house_col, building_col


def _nullable(values: npt.ArrayLike) -> pd.Series:
    return pd.Series(values, dtype="Int64")


def build_buildings(
    layers: AdminLayers, rng: np.random.Generator, reference: pd.Timestamp, people: PersonFactory
) -> BuildingsResult:
    """Buildings, rental details and standard addresses for every micro-grid."""
    shapes = _generate_shapes(layers, rng)
    units, floors = _apartment_layout(shapes["households"].to_numpy(), rng)
    apartment = (shapes["kind"] == "apartment").to_numpy()
    rural = (shapes["kind"] == "rural_house").to_numpy()
    shapes["units"] = _nullable(np.where(apartment, units, 1))
    shapes["floors"] = _nullable(np.where(apartment, floors, rng.integers(2, 5, len(shapes))))

    villages = layers.villages
    town_names = dict(zip(layers.towns["code"], layers.towns["name"], strict=True))
    village_town = villages["parent_code"].to_numpy()
    town_code_of = village_town[shapes["_gen_village_row"].to_numpy()]
    town_prefix = np.array([ADDRESS_PREFIX + town_names[t] for t in town_code_of], dtype=object)

    # Urban numbering: one compound number per micro-grid, one number per street house.
    town_order = layers.towns["code"].tolist()
    roads = plan_roads(
        layers.towns["name"].tolist(),
        [layers.seats[c] for c in town_order],
        [float(np.sqrt(g.area)) / 2.0 for g in layers.towns.geometry.values],
        [n.endswith("街道") for n in layers.towns["name"]],
        rng,
    )
    road_col, house_col, building_col = _urban_numbers(shapes, town_code_of, town_order, roads)
    road_table = pd.DataFrame(
        [
            {"name": name, "kind": kind, "town_code": code, "geometry": line}
            for code, planned, town in zip(town_order, roads, layers.towns.geometry.values, strict=True)
            for name, kind, line in road_lines(planned, town)
        ],
        columns=["name", "kind", "town_code", "geometry"],
    )

    # Rural numbering: group (组) = micro-grid's place in its village, houses west to east.
    micro_codes = layers.micro_grids["code"]
    group_of_micro = micro_codes.groupby(micro_codes.str[:12]).cumcount().to_numpy() + 1
    group_col = np.where(rural, group_of_micro[shapes["_gen_micro_row"].to_numpy()], 0)
    rural_rank = shapes[rural].groupby("_gen_micro_row")["x"].rank(method="first")
    house_col[rural] = rural_rank.to_numpy().astype(np.int64)
    village_names = villages["name"].to_numpy()[shapes["_gen_village_row"].to_numpy()]

    main_text = []
    for prefix, kind, road, house, bno, vname, group in zip(
        town_prefix, shapes["kind"], road_col, house_col, building_col, village_names, group_col, strict=True
    ):
        if kind == "apartment":
            main_text.append(f"{prefix}{road}{house}号{bno}幢")
        elif kind == "street_house":
            main_text.append(f"{prefix}{road}{house}号")
        else:
            main_text.append(f"{prefix}{vname}{group}组{house}号")
    buildings = shapes.assign(
        road=road_col,
        house_no=_nullable(house_col),
        building_no=_nullable(np.where(apartment, building_col, 0)).mask(~apartment),
        group_no=_nullable(group_col).mask(~rural),
        address=main_text,
    )
    buildings = add_rental_fields(buildings, villages, rng, reference, people)
    addresses = _addresses(buildings, rng)
    stats = _village_stats(buildings, villages)
    buildings.index.name = "building"
    return BuildingsResult(buildings, addresses, stats, road_table)


def _addresses(buildings: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each building's own address, plus a room address per household of apartment blocks."""
    apartment = (buildings["kind"] == "apartment").to_numpy()
    own = pd.DataFrame(
        {
            "building": buildings.index.to_numpy(),
            "full_text": buildings["address"].to_numpy(),
            "road": buildings["road"].to_numpy(),
            "house_no": buildings["house_no"].to_numpy(),
            "building_no": buildings["building_no"].to_numpy(),
            "unit_no": pd.array([pd.NA] * len(buildings), dtype="Int64"),
            "room_no": pd.array([pd.NA] * len(buildings), dtype="Int64"),
            "group_no": buildings["group_no"].to_numpy(),
            "precision": np.where(apartment, "building", "house"),
        }
    )
    rooms = _room_rows(buildings, rng)
    base = buildings.loc[rooms["building"].to_numpy()]
    room_text = [
        f"{a}{u}单元{r}室" for a, u, r in zip(base["address"], rooms["unit_no"], rooms["room_no"], strict=True)
    ]
    room_table = pd.DataFrame(
        {
            "building": rooms["building"].to_numpy(),
            "full_text": room_text,
            "road": base["road"].to_numpy(),
            "house_no": base["house_no"].to_numpy(),
            "building_no": base["building_no"].to_numpy(),
            "unit_no": _nullable(rooms["unit_no"]).to_numpy(),
            "room_no": _nullable(rooms["room_no"]).to_numpy(),
            "group_no": base["group_no"].to_numpy(),
            "precision": "room",
        }
    )
    table = pd.concat([own, room_table], ignore_index=True)
    table = table.sort_values(["building", "precision"], kind="stable", ignore_index=True)
    for col in ("house_no", "building_no", "unit_no", "room_no", "group_no"):
        table[col] = table[col].astype("Int64")
    return table


def _village_stats(buildings: pd.DataFrame, villages: pd.DataFrame) -> pd.DataFrame:
    grouped = buildings.groupby("_gen_village_row")
    stats = pd.DataFrame(
        {
            "buildings": grouped.size(),
            "rental_buildings": grouped["rental"].sum(),
            "residents": grouped["residents"].sum(),
            "new_residents": grouped["new_residents"].sum(),
        }
    ).reindex(np.arange(len(villages)), fill_value=0)
    stats.index = villages["code"].to_numpy()
    return stats.astype(np.int64)
