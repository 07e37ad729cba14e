"""What each bulk-importable table accepts: its columns, their types and their vocabularies.

A file's columns are matched to these fields by name, by a few common aliases (经度 for lon, ...)
or by an explicit mapping (``--map lon=经度``). Coded fields accept the code or its Chinese label
(``fire`` or ``火灾隐患``). Naive times are China Standard Time (``gis.core.vocab.COUNTY_TZ``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from gis.incidents import rules

FieldKind = Literal["text", "int", "float", "bool", "time", "code"]

# Hazard vocabulary (隐患): codes as stored, Chinese labels accepted on input.
HAZARD_CATEGORIES: dict[str, str] = {
    "private_wiring": "私拉乱接",
    "ebike_fly_line": "飞线充电",
    "blocked_escape": "消防通道堵塞",
    "illegal_ebike_parking": "电动车违停",
    "gas": "燃气隐患",
    "other": "其他",
    # The rental-safety checklist's categories (migration 0018).
    "fire_equipment": "消防器材缺失",
    "kitchen_bedroom": "厨卧未分隔",
    "overcrowding": "居住人数超标",
    "tenant_registration": "租客未登记",
    "responsibility_letter": "未签责任书",
}
HAZARD_SEVERITIES = {"low": "低", "medium": "中", "high": "高"}
HAZARD_STATUSES = {
    "open": "待整改",
    "notified": "已下发整改通知",
    "rectifying": "整改中",
    "submitted": "已提交整改",
    "rectified": "已整改",
    "overdue": "逾期",
}
HAZARD_PARTIES = {"landlord": "房东", "tenant": "租客", "business": "经营者"}
INSPECTION_RESULTS = {
    "ok": "合格",
    "missing": "缺失",
    "blocked": "堵塞",
    "fly_line": "飞线",
    "indoor": "室内",
    "private": "私拉",
    "aged": "老化",
}
RISK_LEVELS = {"low": "低", "medium": "中", "high": "高"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    required: bool = False
    max_len: int | None = None
    # code -> label; input may be either (labels map to codes).
    codes: Mapping[str, str] | None = None
    default: str | None = None
    minimum: float | None = None
    aliases: tuple[str, ...] = ()

    def accepted(self) -> dict[str, str]:
        """Every accepted spelling (lower-cased code, or label) -> stored code."""
        out: dict[str, str] = {}
        for code, label in (self.codes or {}).items():
            out[code.lower()] = code
            out[label] = code
        return out


@dataclass(frozen=True)
class Spec:
    kind: str
    table: str
    fields: tuple[Field, ...]
    # Which fields make a row "the same row" when a file is imported again (see keys.py).
    key: tuple[str, ...]
    time_field: str | None = None
    extra_columns: tuple[str, ...] = field(default=())

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


LON = Field("lon", "float", required=True, aliases=("lng", "longitude", "x", "经度"))
LAT = Field("lat", "float", required=True, aliases=("latitude", "y", "纬度"))


def _labels(table: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    return {code: zh for code, (zh, _en) in table.items()}


INCIDENTS = Spec(
    kind="incidents",
    table="incidents",
    fields=(
        LON,
        LAT,
        Field("external_id", "text", max_len=64, aliases=("id", "编号", "事件编号")),
        Field(
            "category",
            "code",
            required=True,
            codes={c.code: c.zh for c in rules.CATEGORIES.values()},
            aliases=("类别", "事件类别"),
        ),
        Field("source", "code", required=True, codes=_labels(rules.SOURCES), aliases=("来源", "事件来源")),
        Field("reported_at", "time", required=True, aliases=("time", "上报时间")),
        Field("status", "code", codes=_labels(rules.STATUSES), default="reported", aliases=("状态",)),
        Field("escalation_level", "code", codes=_labels(rules.ESCALATION_LEVELS), default="grid"),
        Field("deadline_at", "time", aliases=("处置时限",)),
        Field("escalated_at", "time"),
        Field("closed_at", "time", aliases=("结案时间",)),
        # The loop's steps, for history imported from another system (the KPIs read them).
        Field("accepted_at", "time", aliases=("立案时间",)),
        Field("dispatched_at", "time", aliases=("派遣时间",)),
        Field("on_scene_at", "time", aliases=("到场时间",)),
        Field("handled_at", "time", aliases=("处置时间", "处置完成时间")),
        Field("verified_at", "time", aliases=("核查时间",)),
        Field("closed_level", "code", codes=_labels(rules.ESCALATION_LEVELS), aliases=("办结层级",)),
        Field("address_text", "text", aliases=("address", "地址")),
        Field("description", "text", aliases=("描述", "事件描述")),
        Field("reporter_name", "text", aliases=("上报人",)),
        Field("reporter_phone", "text", max_len=20, aliases=("phone", "联系电话")),
    ),
    key=("source", "external_id"),
    time_field="reported_at",
)

BUILDINGS = Spec(
    kind="buildings",
    table="buildings",
    fields=(
        LON,
        LAT,
        Field("code", "text", required=True, max_len=40, aliases=("建筑编码", "房屋编码")),
        Field("name", "text", aliases=("名称",)),
        Field("floors", "int", minimum=0, aliases=("层数",)),
        Field("households", "int", minimum=0, aliases=("户数",)),
        Field("residents", "int", minimum=0, aliases=("人口",)),
        Field("new_residents", "int", minimum=0, aliases=("新居民",)),
        Field("is_rental", "bool", aliases=("出租房屋", "rental")),
        Field("landlord_name", "text", aliases=("房东",)),
        Field("landlord_phone", "text", max_len=20, aliases=("房东电话",)),
        Field("landlord_id_card", "text", max_len=18, aliases=("房东身份证",)),
        Field("tenants", "int", minimum=0, aliases=("租客数",)),
        Field("rooms", "int", minimum=0, aliases=("房间数",)),
        Field("escape_window", "code", codes=INSPECTION_RESULTS),
        Field("ebike_charging", "code", codes=INSPECTION_RESULTS),
        Field("wiring", "code", codes=INSPECTION_RESULTS),
        Field("risk_level", "code", codes=RISK_LEVELS, aliases=("风险等级",)),
        Field("last_inspected_at", "time", aliases=("最近检查",)),
    ),
    key=("code",),
)

ADDRESSES = Spec(
    kind="addresses",
    table="addresses",
    fields=(
        LON,
        LAT,
        Field("full_text", "text", required=True, aliases=("address", "地址", "标准地址")),
        Field("building_code", "text", max_len=40, aliases=("建筑编码",)),
    ),
    key=("normalized",),
)

HAZARDS = Spec(
    kind="hazards",
    table="hazards",
    fields=(
        LON,
        LAT,
        Field("category", "code", required=True, codes=HAZARD_CATEGORIES, aliases=("类别", "隐患类别")),
        Field("severity", "code", required=True, codes=HAZARD_SEVERITIES, aliases=("等级", "严重程度")),
        Field("status", "code", required=True, codes=HAZARD_STATUSES, aliases=("状态",)),
        Field("found_at", "time", required=True, aliases=("发现时间",)),
        Field("rectify_by", "time", aliases=("整改期限",)),
        Field("rectified_at", "time", aliases=("整改时间",)),
        Field("description", "text", aliases=("描述",)),
        Field("building_code", "text", max_len=40, aliases=("建筑编码",)),
        Field("responsible_party", "code", codes=HAZARD_PARTIES, aliases=("责任方", "责任主体")),
    ),
    key=("content_key",),
)

SPECS: dict[str, Spec] = {s.kind: s for s in (INCIDENTS, BUILDINGS, ADDRESSES, HAZARDS)}


class UnknownKindError(ValueError):
    pass


def get_spec(kind: str) -> Spec:
    try:
        return SPECS[kind]
    except KeyError:
        raise UnknownKindError(f"cannot import {kind!r}; importable tables: {', '.join(SPECS)}") from None
