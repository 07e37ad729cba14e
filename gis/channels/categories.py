"""The resident-facing categories (居民可选的问题类别): short, plain Chinese names a resident
recognises, each mapped to one gridmap category (gis.incidents.rules.CATEGORIES). The same list is
Open311's ``services``; its codes are the ``service_code``s.

Residents do not see the command centre's risk groups (四大风险): "消防通道堵塞" is what they see,
``fire`` is what the grid worker gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis.incidents import rules


@dataclass(frozen=True)
class ResidentCategory:
    code: str  # the service_code
    zh: str
    en: str
    category: str  # gridmap's category
    group_zh: str
    group_en: str


RESIDENT_CATEGORIES: dict[str, ResidentCategory] = {
    c.code: c
    for c in (
        ResidentCategory("noise", "噪音扰民", "noise nuisance", "noise", "环境", "environment"),
        ResidentCategory(
            "garbage", "垃圾堆放、环境脏乱", "litter and dirty surroundings", "environment", "环境", "environment"
        ),
        ResidentCategory(
            "pollution", "污水、废气、异味污染", "sewage, fumes or smells", "pollution", "环境", "environment"
        ),
        ResidentCategory(
            "road",
            "道路、路灯、井盖损坏",
            "broken road, street light or manhole",
            "road_facility",
            "设施",
            "facilities",
        ),
        ResidentCategory("parking", "乱停车、交通拥堵", "bad parking or traffic jams", "traffic", "设施", "facilities"),
        ResidentCategory(
            "construction", "违章搭建", "illegal construction", "illegal_construction", "设施", "facilities"
        ),
        ResidentCategory(
            "fire_exit", "消防通道堵塞、消防隐患", "blocked fire exit or fire hazard", "fire", "安全", "safety"
        ),
        ResidentCategory("ebike", "电动车楼道违规充电", "e-bike charged indoors", "ebike_charging", "安全", "safety"),
        ResidentCategory("public_order", "治安问题", "public order", "public_order", "安全", "safety"),
        ResidentCategory("fraud", "诈骗线索", "fraud lead", "fraud", "安全", "safety"),
        ResidentCategory("neighbours", "邻里纠纷", "neighbour dispute", "dispute", "纠纷", "disputes"),
        ResidentCategory("wages", "欠薪讨薪", "unpaid wages", "labour_dispute", "纠纷", "disputes"),
        ResidentCategory("rental", "出租房屋问题", "rented housing", "rental_management", "民生", "daily life"),
        ResidentCategory(
            "service", "民生服务诉求", "request for a public service", "public_service", "民生", "daily life"
        ),
        ResidentCategory("other", "其他问题", "something else", "other", "民生", "daily life"),
    )
}

# Every resident category maps to a real gridmap category (checked at import: a typo fails fast).
for _c in RESIDENT_CATEGORIES.values():
    rules.check_category(_c.category)


def resident_category(code: object) -> ResidentCategory | None:
    return RESIDENT_CATEGORIES.get(code) if isinstance(code, str) else None


def category_list(lang: str = "zh") -> list[dict[str, str]]:
    """The list as the page and the API show it, in the resident's language."""
    zh = lang != "en"
    return [
        {"code": c.code, "name": c.zh if zh else c.en, "group": c.group_zh if zh else c.group_en}
        for c in RESIDENT_CATEGORIES.values()
    ]
