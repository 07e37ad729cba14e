"""Chinese (default) and English labels for the map pages: layer names, legend, popups, form.

Codes stored in the database (categories, sources, statuses, risk levels, staff roles) are shown
through these tables; a code without an entry is shown as it is, so new categories still appear.
"""

from __future__ import annotations

from gis.incidents import rules as incident_rules

LANGS = ("zh", "en")


class UnknownLanguageError(ValueError):
    pass


def check_lang(lang: str | None) -> str:
    value = (lang or "zh").strip().lower()
    if value in ("zh-cn", "cn", "zh_cn"):
        value = "zh"
    if value not in LANGS:
        raise UnknownLanguageError(f"lang: {lang!r} is not one of {', '.join(LANGS)}")
    return value


# key: (Chinese, English)
_TEXT: dict[str, tuple[str, str]] = {
    # page titles
    "title.command_center": ("指挥中心综合态势图", "Command centre overview"),
    "title.heat_time": ("事件热力时间动画", "Incident heat over time"),
    "title.grid": ("网格详情", "Grid dashboard"),
    "title.beat": ("警格与网格", "Police beat and its grids"),
    # layer tree
    "tree.boundaries": ("行政区划与网格", "Boundaries and grids"),
    "tree.police": ("公安", "Police"),
    "tree.buildings": ("出租房屋", "Rental buildings"),
    "tree.hazards": ("隐患点", "Hazards"),
    "tree.incidents": ("事件", "Incidents"),
    "layer.county": ("县界", "County"),
    "layer.town": ("镇(街道)", "Towns"),
    "layer.village": ("村(社区)", "Villages"),
    "layer.grid": ("网格", "Grids"),
    "layer.micro_grid": ("微网格", "Micro-grids"),
    "layer.station": ("派出所辖区", "Police stations"),
    "layer.beat": ("警格", "Police beats"),
    "layer.rentals": ("出租房屋(按风险)", "Rental buildings (by risk)"),
    "layer.buildings": ("房屋", "Buildings"),
    "layer.heat": ("事件热力图", "Incident heatmap"),
    "layer.overdue": ("超期事件", "Overdue incidents"),
    "layer.escalated": ("已提级事件", "Escalated incidents"),
    "layer.live": ("实时事件", "Live incidents"),
    "layer.recent": ("近期事件", "Recent incidents"),
    "layer.hazards_all": ("全部隐患", "All hazards"),
    "layer.grids_overlapping": ("相交网格", "Overlapping grids"),
    # popup fields
    "f.code": ("编码", "Code"),
    "f.name": ("名称", "Name"),
    "f.households": ("户数", "Households"),
    "f.staff": ("网格力量", "Staff"),
    "f.incidents": ("事件数(时段内)", "Incidents (window)"),
    "f.open": ("未办结", "Open"),
    "f.pending": ("待处置", "Pending"),
    "f.done": ("已办结", "Done"),
    "f.overdue": ("超期", "Overdue"),
    "f.escalated": ("已提级", "Escalated"),
    "f.rentals": ("出租房屋", "Rental buildings"),
    "f.hazards_open": ("未整改隐患", "Open hazards"),
    "f.category": ("类别", "Category"),
    "f.source": ("来源", "Source"),
    "f.status": ("状态", "Status"),
    "f.reported_at": ("上报时间", "Reported"),
    "f.deadline_at": ("处置时限", "Deadline"),
    "f.escalation_level": ("督办层级", "Escalated to"),
    "f.address_text": ("地址", "Address"),
    "f.reporter_name": ("上报人", "Reporter"),
    "f.reporter_phone": ("上报人电话", "Reporter phone"),
    "f.grid_code": ("所属网格", "Grid"),
    "f.risk_level": ("风险等级", "Risk"),
    "f.tenants": ("租住人数", "Tenants"),
    "f.rooms": ("出租间数", "Rooms"),
    "f.escape_window": ("逃生窗", "Escape window"),
    "f.ebike_charging": ("电动车充电", "E-bike charging"),
    "f.wiring": ("电气线路", "Wiring"),
    "f.last_inspected_at": ("最近检查", "Last inspected"),
    "f.landlord_name": ("房东", "Landlord"),
    "f.landlord_phone": ("房东电话", "Landlord phone"),
    "f.severity": ("严重程度", "Severity"),
    "f.found_at": ("发现时间", "Found"),
    "f.rectify_by": ("整改期限", "Rectify by"),
    "f.description": ("描述", "Description"),
    "f.share": ("落在本警格的比例", "Share inside this beat"),
    "f.parent_code": ("上级编码", "Parent code"),
    # form
    "form.window": ("时段", "Window"),
    "form.from": ("起", "From"),
    "form.to": ("止", "To"),
    "form.apply": ("查询", "Apply"),
    "form.all": ("全部", "All"),
    "form.by": ("动画方式", "Animate by"),
    "form.by.hour": ("按小时(一天内)", "Hour of day"),
    "form.by.day": ("按天", "Day"),
    "form.lang": ("English", "中文"),
    "window.today": ("今天", "Today"),
    "window.7d": ("近7天", "Last 7 days"),
    "window.30d": ("近30天", "Last 30 days"),
    "window.90d": ("近90天", "Last 90 days"),
    "window.365d": ("近一年", "Last year"),
    "window.custom": ("自定义", "Custom"),
    # legend, notes
    "legend.title": ("图例", "Legend"),
    "legend.heat": ("事件密度 低→高", "Incident density low → high"),
    "legend.heat_cells": ("已在服务器按{cell}米方格聚合", "aggregated on the server into {cell} m cells"),
    "legend.heat_raw": ("逐点显示", "one point per incident"),
    "legend.incidents_total": ("时段内事件 {n} 起", "{n} incidents in the window"),
    "legend.overdue": ("超期事件 {n} 起(地图最多标注 {limit} 起)", "{n} overdue incidents (map marks up to {limit})"),
    "legend.escalated": ("已提级未办结事件 {n} 起", "{n} open escalated incidents"),
    "legend.synthetic": ("边界为合成演示数据", "Boundaries are synthetic (demo data)"),
    "legend.snapshot": ("离线快照,生成于 {at}", "Offline snapshot made {at}"),
    "legend.live": ("实时图层每{s}秒刷新", "live layer refreshes every {s} s"),
    "legend.live_push": (
        "实时图层由事件推送更新, 断开时每{s}秒刷新",
        "live layer is pushed; it refreshes every {s} s while the push is down",
    ),
    # the event ticker (GET /events)
    "ticker.title": ("事件动态", "Incident events"),
    "ticker.push": ("推送", "push"),
    "ticker.polling": ("轮询", "polling"),
    "ticker.incident.created": ("新上报", "reported"),
    "ticker.incident.status": ("状态", "status"),
    "ticker.incident.escalated": ("提级", "escalated"),
    "ticker.incident.overdue": ("超期提级", "overdue, escalated"),
    "ticker.action.dispatch": ("派单", "offered"),
    "ticker.action.accept": ("接单", "accepted by the holder"),
    "ticker.action.decline": ("拒单", "declined"),
    "ticker.action.arrive": ("到场", "on scene"),
    "ticker.action.summon": ("吹哨报到", "department summoned"),
    "ticker.action.supervise": ("督办", "supervision order"),
    "ticker.action.reply": ("督办回复", "supervision reply"),
    "ticker.action.remind": ("催办", "reminder"),
    "ticker.action.expire": ("超时未接", "offer expired"),
    "ticker.action.reopen": ("重办", "reopened"),
    "attribution": ("gridmap · 网格边界为合成演示数据(非官方)", "gridmap · grid boundaries are synthetic demo data"),
    "risk.high": ("高风险", "High risk"),
    "risk.medium": ("中风险", "Medium risk"),
    "risk.low": ("低风险", "Low risk"),
    "risk.none": ("未评估", "Not assessed"),
    "chart.weekly": ("每周事件数(按类别)", "Incidents per week by category"),
    "chart.closure": ("每周办结率", "Closure rate per week"),
    "chart.none": ("所选时段内无事件", "No incidents in the chosen period"),
    "grid.open_dashboard": ("打开网格详情", "Open grid dashboard"),
    "beat.grids": ("与本警格相交的网格", "Grids overlapping this beat"),
    "beat.station": ("所属派出所", "Police station"),
    "frames.cells": ("{cell}米方格, 共{n}起", "{cell} m cells, {n} incidents"),
    # the weekly briefing (maps.briefing_page) and the command centre's KPI strip (maps.kpi_strip)
    "title.briefing": ("每周会商研判", "Weekly briefing"),
    "brief.county": ("全县", "County"),
    "brief.week": ("周次", "Week"),
    "brief.kpis": ("本周指标", "KPIs of the week"),
    "brief.value": ("本周", "This week"),
    "brief.vs_previous": ("环比上周", "vs previous week"),
    "brief.vs_last_year": ("同比去年同周", "vs same week last year"),
    "brief.units.town": ("各镇(街道)", "Towns"),
    "brief.units.village": ("各村(社区)", "Villages"),
    "brief.backlog": ("未办结与超期", "Open and overdue"),
    "brief.hazards": ("超期隐患", "Overdue hazards"),
    "brief.hazards_overdue": ("超期隐患", "Hazards overdue"),
    "brief.hot": ("本周热点网格", "Hot grids this week"),
    "brief.new_hot": ("本周新增热点", "New hot spots this week"),
    "brief.repeats": ("重复发生地(本周仍有事件)", "Repeat locations active this week"),
    "brief.categories": ("上升类别(本周与前4周均值比)", "Rising categories (this week vs mean of the 4 weeks before)"),
    "brief.this_week": ("本周", "This week"),
    "brief.mean4": ("前4周均值", "Mean of 4 weeks before"),
    "brief.not_overdue": ("未超期", "Not overdue"),
    "brief.overdue_ramp": ("超期事件 少→多", "Overdue incidents, few → many"),
    "brief.xlsx": ("下载Excel", "Download XLSX"),
    "brief.none": ("无", "None"),
    "brief.as_of": ("未办结、超期按 {at} 统计", "Open and overdue as of {at}"),
    "brief.total": ("合计", "Total"),
    "brief.place": ("地点", "Place"),
    "strip.title": ("核心指标", "Key figures"),
    "strip.today": ("今日", "Today"),
    "strip.week": ("本周", "This week"),
    "strip.vs_last_year": ("同比", "vs last year"),
    "strip.backlog": ("当前", "Now"),
    "strip.kpi": ("指标", "KPI"),
    "strip.towns": ("镇(街道)排名", "Towns ranked"),
    "strip.grids_top": ("网格(最高10个, 事件≥5起)", "Grids, highest 10 (5+ incidents)"),
    "strip.grids_bottom": ("网格(最低10个, 事件≥5起)", "Grids, lowest 10 (5+ incidents)"),
    "strip.period": ("排名与分级图时段: {start} 至 {end}", "Rankings and choropleth: {start} to {end}"),
    "layer.kpi": ("网格指标分级图", "Grid KPI choropleth"),
    "legend.kpi": ("网格指标(所选时段): 浅→深 低→高", "Grid KPI (chosen window): light → dark, low → high"),
    "legend.kpi_none": ("无数据", "no data"),
    # staff roles
    "role.grid_leader": ("网格长", "Grid leader"),
    "role.grid_worker": ("专职网格员", "Grid worker"),
    "role.aux_police": ("网格辅警", "Auxiliary police"),
    "role.community_police": ("社区民警", "Community police"),
    # incident statuses
    "status.reported": ("上报", "Reported"),
    "status.accepted": ("立案", "Accepted"),
    "status.rejected": ("不予立案", "Rejected"),
    "status.dispatched": ("派遣", "Dispatched"),
    "status.in_progress": ("处置中", "In progress"),
    "status.handled": ("处置完成", "Handled"),
    "status.verified": ("核查", "Verified"),
    "status.closed": ("结案", "Closed"),
    # hazard statuses
    "hstatus.open": ("待整改", "Open"),
    "hstatus.notified": ("已下发整改通知", "Notified"),
    "hstatus.rectifying": ("整改中", "Rectifying"),
    "hstatus.submitted": ("已提交整改", "Submitted"),
    "hstatus.rectified": ("已整改", "Rectified"),
    "hstatus.overdue": ("逾期未改", "Overdue"),
    # inspections, hazards and campaigns (maps/inspection_layers.py, gis/fieldwork/maplayers.py)
    "tree.inspections": ("检查与隐患整改", "Inspections and hazards"),
    "layer.insp_risk": ("出租房屋(按最近一次检查风险)", "Rental buildings (risk at latest inspection)"),
    "layer.insp_age": ("出租房屋(按距上次检查时间)", "Rental buildings (time since last inspection)"),
    "layer.insp_due": ("出租房屋检查是否到期", "Rental buildings: inspection due or not"),
    "layer.hazards_open": ("未整改隐患(未逾期)", "Open hazards (not overdue)"),
    "layer.hazards_overdue": ("逾期未整改隐患", "Overdue hazards"),
    "layer.campaign_inspected": (
        "专项整治「{name}」已检查比例(按网格)",
        "Campaign \u201c{name}\u201d: share inspected by grid",
    ),
    "layer.campaign_rectified": (
        "专项整治「{name}」隐患已整改比例(按网格)",
        "Campaign \u201c{name}\u201d: share of hazards rectified by grid",
    ),
    "legend.insp_risk": ("出租房屋最近一次检查风险", "Rentals: risk at latest inspection"),
    "legend.insp_age": ("出租房屋距上次检查", "Rentals: time since last inspection"),
    "legend.insp_due": ("出租房屋检查周期", "Rentals: inspection interval"),
    "legend.hazards": ("未整改隐患", "Open hazards"),
    "legend.hazard_overdue": ("逾期未整改(黑色粗边)", "overdue (thick black ring)"),
    "legend.campaign": ("专项整治完成比例(按网格)", "Campaign: share done by grid"),
    "legend.campaign_none": ("无目标房屋或无隐患", "no targets or no hazards"),
    "legend.campaign_of": ("专项整治: {name}({start}至{end})", "Campaign: {name} ({start} to {end})"),
    "legend.no_campaign": ("暂无可显示的专项整治", "No campaign to show"),
    "form.campaign": ("专项整治", "Campaign"),
    # the hazard categories of the rental-safety checklist (as gis.bulk.specs names them in Chinese)
    "hazard.ebike_fly_line": ("飞线充电", "E-bike fly-line charging"),
    "hazard.fire_equipment": ("消防器材缺失", "Fire equipment missing"),
    "hazard.kitchen_bedroom": ("厨卧未分隔", "Kitchen not separated from living space"),
    "hazard.overcrowding": ("居住人数超标", "Overcrowding"),
    "hazard.tenant_registration": ("租客未登记", "Tenants not registered"),
    "hazard.responsibility_letter": ("未签责任书", "No landlord responsibility letter"),
    "hazard.other": ("其他", "Other"),
    "age.lt30": ("30天内", "under 30 days"),
    "age.d30_90": ("30–90天", "30–90 days"),
    "age.d90_180": ("90–180天", "90–180 days"),
    "age.gt180": ("超过180天", "over 180 days"),
    "age.never": ("从未检查", "never inspected"),
    "due.within": ("在检查周期内", "inspected within its interval"),
    "due.overdue": ("超期未检查", "overdue for inspection"),
    "due.never": ("从未检查", "never inspected"),
    "insp.coverage": ("出租房屋检查覆盖", "Rental building inspection coverage"),
    "insp.buildings": ("出租房屋", "rental buildings"),
    "insp.due_total": ("应检未检(超期+从未检查)", "due for inspection (overdue + never)"),
    "insp.share_within": ("周期内已检查比例", "share inspected within the interval"),
    "insp.intervals": (
        "检查周期: 高风险{high}天, 中风险{medium}天, 低风险{low}天",
        "Intervals: high risk {high} d, medium {medium} d, low {low} d",
    ),
    "f.days_since": ("距上次检查(天)", "Days since inspection"),
    "f.due_on": ("下次检查日期", "Next inspection due"),
    "f.targets": ("目标房屋", "Target buildings"),
    "f.inspected": ("已检查", "Inspected"),
    "f.failed": ("检查不合格", "Failed"),
    "f.hazards_found": ("发现隐患", "Hazards found"),
    "f.rectified": ("已整改", "Rectified"),
    "f.rectified_on_time": ("按期整改", "Rectified on time"),
    "f.hazards_overdue": ("逾期隐患", "Overdue hazards"),
    "f.share_done": ("完成比例", "Share done"),
    # sources
    "source.patrol": ("网格员巡查", "Grid-worker patrol"),
    "source.grid_patrol": ("网格员巡查", "Grid-worker patrol"),
    "source.app": ("群众APP", "Residents' app"),
    "source.resident_app": ("群众APP", "Residents' app"),
    "source.110": ("110", "110 police line"),
    "source.12345": ("12345", "12345 hotline"),
    "source.hotline_110": ("110", "110 police line"),
    "source.hotline_12345": ("12345", "12345 hotline"),
    # incident categories (the four big risks and everyday matters)
    "category.stability": ("社会稳定", "Social stability"),
    "category.dispute": ("矛盾纠纷", "Dispute"),
    "category.neighbour_dispute": ("邻里纠纷", "Neighbour dispute"),
    "category.family_dispute": ("家庭纠纷", "Family dispute"),
    "category.labour_dispute": ("劳资纠纷", "Labour dispute"),
    "category.homicide_risk": ("命案防范", "Homicide prevention"),
    "category.homicide_prevention": ("命案防范", "Homicide prevention"),
    "category.fire": ("消防安全", "Fire safety"),
    "category.fire_safety": ("消防安全", "Fire safety"),
    "category.production_safety": ("安全生产", "Production safety"),
    "category.public_security": ("治安", "Public order"),
    "category.environment": ("环境卫生", "Environment"),
    "category.traffic": ("交通", "Traffic"),
    "category.city_management": ("城市管理", "City management"),
    "category.other": ("其他", "Other"),
    # hazard categories
    "hazard.private_wiring": ("私拉乱接电线", "Private wiring"),
    "hazard.ebike_flyline": ("电动车飞线充电", "E-bike fly-line charging"),
    "hazard.ebike_charging": ("电动车违规充电", "E-bike charging"),
    "hazard.blocked_escape": ("堵塞消防通道", "Blocked fire escape"),
    "hazard.blocked_fire_escape": ("堵塞消防通道", "Blocked fire escape"),
    "hazard.ebike_parking": ("电动车违规停放", "Illegal e-bike parking"),
    "hazard.illegal_ebike_parking": ("电动车违规停放", "Illegal e-bike parking"),
    "hazard.gas": ("燃气隐患", "Gas"),
    "severity.high": ("高", "High"),
    "severity.medium": ("中", "Medium"),
    "severity.low": ("低", "Low"),
    "inspection.ok": ("合格", "OK"),
    "inspection.pass": ("合格", "Pass"),
    "inspection.fail": ("不合格", "Fail"),
    "inspection.missing": ("缺失", "Missing"),
    "escalation.grid": ("网格", "Grid"),
    "escalation.village": ("村(社区)", "Village"),
    "escalation.town": ("镇(街道)指挥中心", "Town centre"),
    "escalation.county": ("县指挥中心", "County centre"),
}


def _rule_labels() -> dict[str, tuple[str, str]]:
    """Incident categories, sources and statuses as named by the intake rules (one source of truth)."""
    out = {f"category.{c.code}": (c.zh, c.en.capitalize()) for c in incident_rules.CATEGORIES.values()}
    out |= {f"source.{code}": (zh, en.capitalize()) for code, (zh, en) in incident_rules.SOURCES.items()}
    return out


_TEXT.update(_rule_labels())

# The KPIs' English names; the Chinese ones are the county's words in gis.analysis.kpis (one source).
_KPI_EN = {
    "reported": "Reported",
    "rejected": "Rejected",
    "closed": "Closed",
    "closure_rate": "Closure rate",
    "on_time_rate": "On-time rate",
    "accept_p50_min": "Response median (min)",
    "accept_p90_min": "Response P90 (min)",
    "arrive_p50_min": "Arrival median (min)",
    "arrive_p90_min": "Arrival P90 (min)",
    "handle_p50_h": "Handling median (h)",
    "handle_p90_h": "Handling P90 (h)",
    "closed_at_grid": "Closed at grid",
    "closed_at_village": "Closed at village",
    "closed_at_town": "Closed at town",
    "closed_at_county": "Closed at county",
    "settled_in_town_rate": "Settled at town or below",
    "escalation_rate": "Escalation rate",
    "reopen_rate": "Reopen rate",
    "callbacks": "Callbacks",
    "satisfaction_rate": "Satisfaction",
}


def _kpi_labels() -> dict[str, tuple[str, str]]:
    from gis.analysis.kpis import KPIS

    return {f"kpi.{k.name}": (k.label, _KPI_EN.get(k.name, k.name)) for k in KPIS}


_TEXT.update(_kpi_labels())


def label(key: str, lang: str = "zh", **values: object) -> str:
    """The text for ``key``; an unknown key shows the part after the first dot (the raw code)."""
    pair = _TEXT.get(key)
    text = (pair[0] if lang == "zh" else pair[1]) if pair else key.split(".", 1)[-1]
    return text.format(**values) if values else text


def labels(lang: str = "zh", prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """All labels of ``lang`` (or those whose key starts with one of ``prefixes``), for the client."""
    index = 0 if check_lang(lang) == "zh" else 1
    return {k: v[index] for k, v in _TEXT.items() if not prefixes or k.startswith(prefixes)}
