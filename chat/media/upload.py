"""An upload, top to bottom: sniff the bytes → check the size for their kind → normalise (photo:
orient, strip, resize; voice note: decode, trim, level) → photo: match against the catalog;
voice note: transcribe → store files and row together.

Every refusal is a MediaRefused with words for the shopper; nothing is stored unless all steps
worked.
"""

from __future__ import annotations

import hashlib
import logging
import uuid

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename
from django.utils.translation import gettext_noop

from catalog.imagematch import LIKELY_MATCH, PhotoMatch, photo_match
from chat.errors import MediaRefused, lazy_format, lazy_number
from chat.llm.transcribe import transcribe
from chat.media.audio import audio_process
from chat.media.images import ProcessedImage, image_process
from chat.media.services import AttachmentDraft, FileVariant, attachment_store
from chat.media.sniff import media_sniff
from chat.media.workers import media_run, media_run_db
from chat.models import Attachment

logger = logging.getLogger(__name__)

NAME_LIMIT = 120


def display_name(raw: str, *, kind: str, extension: str) -> str:
    """The shopper's file name, safe to show anywhere: no path, no markup, bounded."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        name = get_valid_filename(base)
    except SuspiciousFileOperation:  # nothing usable left ("..", "", "<>")
        name = ""
    if not name:
        name = f"{'photo' if kind == Attachment.Kind.IMAGE else 'voice-note'}.{extension}"
    if len(name) > NAME_LIMIT:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[: NAME_LIMIT - len(ext) - 1]}.{ext}" if dot and len(ext) <= 8 else name[:NAME_LIMIT]
    return name


def _size_check(*, kind: str, size: int) -> None:
    limit = settings.CHAT_IMAGE_MAX_BYTES if kind == Attachment.Kind.IMAGE else settings.CHAT_AUDIO_MAX_BYTES
    if size > limit:
        if kind == Attachment.Kind.IMAGE:
            message = gettext_noop("Photos can be at most %(limit)s MB; this file is %(size)s MB.")
        else:
            message = gettext_noop("Voice notes can be at most %(limit)s MB; this file is %(size)s MB.")
        raise MediaRefused(
            lazy_format(message, limit=limit // (1024 * 1024), size=lazy_number(size / (1024 * 1024), 1)),
            code="too_large",
            status=413,
        )


def _likely(matches: list[PhotoMatch]) -> PhotoMatch | None:
    """The catalog product a photo shows, when the match is clear (see catalog.imagematch)."""
    if not matches or matches[0].score < LIKELY_MATCH:
        return None
    if len(matches) > 1 and matches[0].score < 2 * matches[1].score:
        return None
    return matches[0]


async def _image_draft(data: bytes) -> tuple[ProcessedImage, dict[str, object]]:
    processed = await media_run(image_process, data)
    analysis: dict[str, object] = {}
    try:
        matches = await media_run_db(photo_match, processed.image, limit=3)
    except Exception:  # the photo is still worth keeping and sending without a catalog match
        logger.exception("photo match failed")
        matches = []
    analysis["matches"] = [{"handle": m.product.handle, "score": m.score} for m in matches]
    likely = _likely(matches)
    if likely is not None:
        analysis["match"] = {"handle": likely.product.handle, "title": likely.product.title, "score": likely.score}
    return processed, analysis


async def attachment_upload(*, conversation_id: uuid.UUID | str, data: bytes, filename: str) -> Attachment:
    """Process and store one uploaded file for a conversation.

    Raises:
        MediaRefused: the file is empty, of a type we do not take, too large or long, damaged,
            or (voice notes) silent. Nothing is stored.
    """
    sniffed = media_sniff(data)
    _size_check(kind=sniffed.kind, size=len(data))
    name = display_name(filename, kind=sniffed.kind, extension=sniffed.extension)
    digest = hashlib.sha256(data).hexdigest()
    if sniffed.kind == "image":
        image, analysis = await _image_draft(data)
        draft = AttachmentDraft(
            kind=Attachment.Kind.IMAGE,
            source_format=image.source_format,
            file=FileVariant(image.stored, image.stored_type),
            model_file=FileVariant(image.model, image.model_type),
            thumb=FileVariant(image.thumb, image.thumb_type),
            fields={"width": image.width, "height": image.height, "analysis": analysis},
            name=name,
            size_bytes=len(data),
            sha256=digest,
        )
    else:
        audio = await media_run(audio_process, data, extension=sniffed.extension)
        transcript = await transcribe(audio)
        fields: dict[str, object] = {"duration_ms": audio.duration_ms}
        if transcript is not None:
            fields |= {"transcript": transcript.text, "transcript_source": transcript.source}
        else:
            fields["analysis"] = {"transcript_error": "no transcriber was available or every one failed"}
        draft = AttachmentDraft(
            kind=Attachment.Kind.AUDIO,
            source_format=audio.source_format,
            file=FileVariant(audio.data, audio.content_type),
            fields=fields,
            name=name,
            size_bytes=len(data),
            sha256=digest,
        )
    # In the media pool: writing files may mean a round trip to S3.
    return await media_run_db(attachment_store, conversation_id=conversation_id, draft=draft)
