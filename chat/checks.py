"""Start-up checks: structured model settings fail at boot, not in the middle of a turn."""

from __future__ import annotations

import shutil
from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning
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


@register()
def ffmpeg_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Voice notes need ffmpeg and ffprobe; the rest of the app runs without them."""
    missing = [name for name in ("ffmpeg", "ffprobe") if shutil.which(name) is None]
    if not missing:
        return []
    return [
        CheckWarning(
            f"{' and '.join(missing)} not found: every voice note upload will fail.",
            hint="Install Debian's ffmpeg package (scripts/system-deps.sh --run does it as root).",
            id="supportbot.W001",
        )
    ]
