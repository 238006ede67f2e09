"""The staff actions of the conversation admin, as a ModelAdmin base class: marking reviewed,
flagging, exporting (admin actions and buttons on the conversation page) and deleting a shopper's
data (an action and the page's Delete link, both behind a confirmation page).

Review actions need `chat.review_conversation`; deleting needs `chat.delete_shopper_data`, and
Django's plain delete permission is not enough: every deletion goes through conversations_delete,
which removes the files too.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header

from chat.models import Conversation
from chat.review.export import conversations_export_csv, conversations_export_json
from chat.review.privacy import conversations_delete
from chat.review.selectors import conversations_deletion_preview
from chat.review.services import conversations_flag, conversations_mark_reviewed, conversations_mark_unreviewed

logger = logging.getLogger(__name__)

REVIEW_PERMISSION = "chat.review_conversation"
DELETE_DATA_PERMISSION = "chat.delete_shopper_data"
EXPORTS = {
    "json": (conversations_export_json, "application/json; charset=utf-8"),
    "csv": (conversations_export_csv, "text/csv; charset=utf-8"),
}


class ConversationActionsAdmin(admin.ModelAdmin):
    actions = (
        "mark_reviewed",
        "mark_unreviewed",
        "flag",
        "unflag",
        "export_json",
        "export_csv",
        "delete_shopper_data",
    )

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW_PERMISSION)

    def has_delete_shopper_data_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DELETE_DATA_PERMISSION)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a conversation deletes a shopper's data and files: Django's plain delete
        # permission is not enough, and every path goes through conversations_delete.
        return self.has_delete_shopper_data_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would delete rows and leave the files
        return actions

    def action_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<uuid:object_id>/export/<str:fmt>/", wrap(self.export_view), name="chat_conversation_export"),
            path("<uuid:object_id>/reviewed/", wrap(self.reviewed_view), name="chat_conversation_reviewed"),
        ]

    # --- buttons on the conversation page ----------------------------------------------------

    def reviewed_view(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        """POST: mark the conversation reviewed (or, with reviewed=0, not reviewed)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        conversation = self._reviewable(request, object_id)
        if request.POST.get("reviewed") == "0":
            conversations_mark_unreviewed(conversation_ids=[conversation.pk])
            self.message_user(request, "Marked not reviewed: it is back in the review queue.")
        else:
            conversations_mark_reviewed(conversation_ids=[conversation.pk], user=request.user)
            self.message_user(request, "Marked reviewed.", messages.SUCCESS)
        return redirect(reverse("admin:chat_conversation_change", args=[conversation.pk]))

    def export_view(self, request: HttpRequest, object_id: Any, fmt: str) -> HttpResponse:
        conversation = self._reviewable(request, object_id)
        if fmt not in EXPORTS:
            raise Http404("No such export format.")
        return self._export(request, [conversation.pk], fmt, name=f"conversation-{conversation.pk}")

    def _reviewable(self, request: HttpRequest, object_id: Any) -> Conversation:
        if not (self.has_view_permission(request) and self.has_review_permission(request)):
            raise PermissionDenied
        conversation = self.get_object(request, str(object_id))
        if conversation is None:
            raise Http404("No such conversation.")
        return cast(Conversation, conversation)

    def _export(self, request: HttpRequest, ids: list[Any], fmt: str, *, name: str) -> HttpResponse:
        write, content_type = EXPORTS[fmt]
        logger.info("%s exported %d conversation(s) as %s", request.user.get_username(), len(ids), fmt)
        response = HttpResponse(write(conversation_ids=ids), content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=f"{name}.{fmt}") or ""
        return response

    # --- actions -------------------------------------------------------------------------

    @admin.action(permissions=["review"], description="Mark selected conversations reviewed")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        marked = conversations_mark_reviewed(conversation_ids=_ids(queryset), user=request.user)
        self.message_user(request, f"Marked {marked} conversation(s) reviewed.", messages.SUCCESS)

    @admin.action(permissions=["review"], description="Mark selected conversations not reviewed")
    def mark_unreviewed(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        changed = conversations_mark_unreviewed(conversation_ids=_ids(queryset))
        self.message_user(request, f"Put {changed} conversation(s) back in the review queue.")

    @admin.action(permissions=["review"], description="Flag selected conversations")
    def flag(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        changed = conversations_flag(conversation_ids=_ids(queryset), flagged=True)
        self.message_user(request, f"Flagged {changed} conversation(s).")

    @admin.action(permissions=["review"], description="Unflag selected conversations")
    def unflag(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        changed = conversations_flag(conversation_ids=_ids(queryset), flagged=False)
        self.message_user(request, f"Unflagged {changed} conversation(s).")

    @admin.action(permissions=["review"], description="Export selected conversations as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        return self._export(request, _ids(queryset), "json", name=_export_name())

    @admin.action(permissions=["review"], description="Export selected conversations as CSV (a row per message)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        return self._export(request, _ids(queryset), "csv", name=_export_name())

    @admin.action(permissions=["delete_shopper_data"], description="Delete shopper data (privacy request)…")
    def delete_shopper_data(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse | None:
        if request.POST.get("post") == "yes":
            self._shopper_data_delete(request, queryset)
            return None
        return self._shopper_data_confirm(request, queryset, action="delete_shopper_data")

    # --- deleting a shopper's data ---------------------------------------------------------

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        """The page's Delete link: the same confirmation and deletion as the action."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such conversation: it may have been deleted already.")
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        if request.method == "POST" and request.POST.get("post") == "yes":
            self._shopper_data_delete(request, queryset)
            return HttpResponseRedirect(reverse("admin:chat_conversation_changelist"))
        return self._shopper_data_confirm(request, queryset, action="")

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        conversations_delete(conversation_ids=[obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        conversations_delete(conversation_ids=_ids(queryset))

    def _shopper_data_confirm(
        self, request: HttpRequest, queryset: QuerySet[Conversation], action: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete shopper data",
            "opts": self.opts,
            "conversations": conversations_deletion_preview(Conversation.objects.filter(pk__in=_ids(queryset))),
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/chat/conversation/delete_shopper_data.html", context)

    def _shopper_data_delete(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        ids = _ids(queryset)
        self.log_deletions(request, Conversation.objects.filter(pk__in=ids))
        counts = conversations_delete(conversation_ids=ids)
        logger.info("%s deleted shopper data: %s", request.user.get_username(), counts)
        self.message_user(request, f"Deleted {counts}.", messages.SUCCESS)


def _ids(queryset: QuerySet[Conversation]) -> list[Any]:
    # Only the keys: the admin's queryset carries annotations and DISTINCT that a write needs not.
    return list(queryset.values_list("pk", flat=True))


def _export_name() -> str:
    return f"conversations-{timezone.localtime():%Y%m%d-%H%M%S}"
