"""The captcha hook of the public report (人机验证): an interface, off by default.

An intranet deployment needs none; an internet-facing one plugs in its provider by setting
``app.state.captcha`` to a ``CaptchaCheck`` (for example one that asks a slider-captcha service
whether ``answer`` was solved from ``ip``). When one is set, a report without a passing ``captcha``
field is refused with 422 naming the field; when none is set the field is ignored.
"""

from __future__ import annotations

from typing import Protocol


class CaptchaCheck(Protocol):
    def __call__(self, answer: str | None, ip: str | None) -> bool:
        """True when ``answer`` proves a person sent the report from ``ip``."""
        ...
