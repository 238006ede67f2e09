"""Start-up checks: structured model settings fail at boot, not in the middle of a turn."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def model_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from chat.llm.endpoints import endpoint_chain, request_params
    from chat.llm.pricing import price_table

    errors: list[CheckMessage] = []
    try:
        price_table()
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="supportbot.E001"))
    try:
        for endpoint in endpoint_chain():
            request_params(endpoint)
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="supportbot.E002"))
    return errors
