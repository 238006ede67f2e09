"""Writes of staff review: marking conversations reviewed and flagging them. Tags and the private
note are plain fields the admin form saves."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from chat.models import Conversation


def conversations_mark_reviewed(*, conversation_ids: Iterable[uuid.UUID | str], user: Any) -> int:
    """Record that `user` reviewed these conversations now.

    A conversation already reviewed keeps its first reviewer and time. Returns how many were
    newly marked.
    """
    now = timezone.now()
    unreviewed = Conversation.objects.filter(pk__in=list(conversation_ids), reviewed_at__isnull=True)
    return unreviewed.update(reviewed_at=now, reviewed_by=user, updated_at=now)


def conversations_mark_unreviewed(*, conversation_ids: Iterable[uuid.UUID | str]) -> int:
    """Put conversations back in the review queue; returns how many were reviewed before."""
    reviewed = Conversation.objects.filter(pk__in=list(conversation_ids), reviewed_at__isnull=False)
    return reviewed.update(reviewed_at=None, reviewed_by=None, updated_at=timezone.now())


def conversations_flag(*, conversation_ids: Iterable[uuid.UUID | str], flagged: bool) -> int:
    """Flag (or unflag) conversations; returns how many changed."""
    changing = Conversation.objects.filter(pk__in=list(conversation_ids)).exclude(flagged=flagged)
    return changing.update(flagged=flagged, updated_at=timezone.now())
