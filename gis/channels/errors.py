"""The public channels' errors, worded for residents: Chinese by default, English on request.

A ``PublicInputError`` names the field and the value at fault (the API answers 422 with both); a
``TicketNotFound`` is the same answer for an unknown ticket and a wrong token, so that a guess
learns nothing about other residents' tickets; a ``RatingRefused`` is a rating that cannot be taken
(twice, or before the matter is handled).
"""

from __future__ import annotations

from typing import Any

LANGS = ("zh", "en")


def pick_lang(value: object) -> str:
    """``en`` when asked for (``?lang=en`` or an Accept-Language starting with en), else ``zh``."""
    if isinstance(value, str) and value.strip().lower().startswith("en"):
        return "en"
    return "zh"


class PublicError(Exception):
    status = 400

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en

    def message(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class PublicInputError(PublicError):
    status = 422

    def __init__(self, field: str, value: Any, zh: str, en: str) -> None:
        super().__init__(zh, en)
        self.field = field
        self.value = value


class TicketNotFound(PublicError):
    status = 404

    def __init__(self) -> None:
        super().__init__("票号或查询码不正确", "no such ticket, or the tracking token does not match")


class RatingRefused(PublicError):
    status = 409


class TooManyReports(PublicError):
    status = 429

    def __init__(self, who_zh: str, who_en: str, wait_s: float) -> None:
        super().__init__(
            f"{who_zh}提交过于频繁，请{max(1, round(wait_s))}秒后再试",
            f"too many reports from this {who_en}; retry in {max(1, round(wait_s))} s",
        )
        self.wait_s = wait_s


# Reasons for the fields the incident intake checks, in the residents' words; the intake's own
# (English) reason is given alongside.
FIELD_ZH = {
    "lon": "位置（经度）不正确",
    "lat": "位置（纬度）不正确",
    "crs": "坐标系只能是 gcj02、bd09 或 wgs84",
    "address": "无法识别该地址，请在地图上选点或补充地址",
    "description": "问题描述不正确",
    "phone": "手机号码格式不正确",
    "category": "请选择列表中的问题类别",
    "device_id": "设备标识不正确",
    "photos": "照片不符合要求",
    "captcha": "验证码不正确",
    "rating": "评价只能是：满意、基本满意、不满意",
    "note": "评价说明不正确",
    "media_url": "图片链接不正确",
}
