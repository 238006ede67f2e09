"""List filters of the conversation admin. Each filters with Exists or a plain column, so none
can repeat a conversation in the list."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Exists, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from chat.models import Conversation
from chat.review import selectors

YES_NO = (("yes", "Yes"), ("no", "No"))


class _YesNoFilter(admin.SimpleListFilter):
    """Yes/no on one condition; subclasses say which."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return YES_NO

    def condition(self) -> Q | Exists:
        raise NotImplementedError

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.exclude(self.condition())
        return queryset


class ReviewedFilter(_YesNoFilter):
    title = "reviewed"
    parameter_name = "reviewed"

    def condition(self) -> Q:
        return Q(reviewed_at__isnull=False)


class MediaFilter(_YesNoFilter):
    title = "photos or voice notes"
    parameter_name = "media"

    def condition(self) -> Exists:
        return selectors.has_media()


class ThumbsDownFilter(_YesNoFilter):
    title = "thumbs-down"
    parameter_name = "thumbs_down"

    def condition(self) -> Exists:
        return selectors.has_thumbs_down()


class BrokenReplyFilter(_YesNoFilter):
    title = "failed or incomplete replies"
    parameter_name = "broken"

    def condition(self) -> Exists:
        return selectors.has_broken_reply()


class RefusalFilter(_YesNoFilter):
    title = "refusals (content filter)"
    parameter_name = "refusal"

    def condition(self) -> Exists:
        return selectors.has_refusal()


class HandoffFilter(_YesNoFilter):
    title = "asked for a person"
    parameter_name = "handoff"

    def condition(self) -> Q:
        return Q(handoff_requested_at__isnull=False)


class RatingFilter(admin.SimpleListFilter):
    title = "rating"
    parameter_name = "rating"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [(str(n), f"{n}/5") for n in range(1, 6)] + [("none", "Not rated")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        value = self.value()
        if value == "none":
            return queryset.filter(rating__isnull=True)
        if value in {str(n) for n in range(1, 6)}:
            return queryset.filter(rating=int(value))
        return queryset


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [(name, name) for name in selectors.models_used()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        value = self.value()
        return queryset.filter(selectors.used_model(value)) if value else queryset


class CreatedRangeFilter(admin.ListFilter):
    """Started between two dates (inclusive), in the site's time zone."""

    title = "started between"
    template = "admin/chat/conversation/date_range_filter.html"
    params = ("created_from", "created_to")

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.params:
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.params)

    def _date(self, name: str) -> date | None:
        value = str(self.used_parameters.get(name) or "")
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        start, end = self._date("created_from"), self._date("created_to")
        if start is not None:
            queryset = queryset.filter(created_at__gte=_midnight(start))
        if end is not None:
            queryset = queryset.filter(created_at__lt=_midnight(end + timedelta(days=1)))
        return queryset

    def choices(self, changelist: ChangeList) -> Any:
        """One "choice": the form's current values and the other parameters to keep."""
        keep = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name not in self.params
            for value in values
        ]
        yield {
            "selected": any(self.used_parameters.get(name) for name in self.params),
            "created_from": self.used_parameters.get("created_from", ""),
            "created_to": self.used_parameters.get("created_to", ""),
            "keep": keep,
            "clear_query_string": changelist.get_query_string(remove=list(self.params)),
        }


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
