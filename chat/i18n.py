"""The JavaScript translation catalog, `/jsi18n/<lang>.js`.

Django's JavaScriptCatalog (domain djangojs) for the language named in the URL, not the one the
request negotiates: the chat page asks for the language it was rendered in and the widget's iframe
for the one its site or shopper chose, and a cache can keep the file, because the URL alone says
what is in it. It defines window.gettext, ngettext and interpolate for the scripts after it.

Catalogs come from locale/ (scripts/i18n.sh makes them); the admin's own JavaScript strings are
left out, the shopper's pages never use them.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils import translation
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog

# An hour: a deploy with new strings reaches every page within it.
CACHE_SECONDS = 3600

# packages=["chat"]: LOCALE_PATHS (always searched) plus chat's own, instead of every installed app.
_catalog = JavaScriptCatalog.as_view(domain="djangojs", packages=["chat"])


@cache_control(public=True, max_age=CACHE_SECONDS)
def javascript_catalog(request: HttpRequest, lang: str) -> HttpResponseBase:
    """The catalog for `lang`, one of settings.LANGUAGES; any other: 404."""
    if lang not in dict(settings.LANGUAGES):
        raise Http404("No such language.")
    with translation.override(lang):
        response = _catalog(request)
    response["Content-Language"] = lang
    return response
