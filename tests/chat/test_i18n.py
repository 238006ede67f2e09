"""The shopper's chat in German and Spanish: the page, the JavaScript catalog, stored notices,
error frames, media refusals and the offline assistant; and catalogs that are complete, keep
their placeholders and are compiled from the .po files next to them (scripts/i18n.sh)."""

from __future__ import annotations

import gettext
import json
import re
import uuid
from decimal import Decimal
from pathlib import Path

import polib  # type: ignore[import-untyped]  # polib ships no type hints
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import translation

from catalog.models import Product, Variant
from chat import states
from chat.errors import ChatError, InvalidJSON, MediaRefused, TooManyConnections, UpstreamUnavailable
from chat.llm.offline import OfflineResponder, offline_answer
from chat.llm.types import ChatRequest, TextDelta
from chat.media.sniff import media_sniff
from chat.models import Conversation, Message
from supportbot.asgi import application

LOCALE = Path(settings.BASE_DIR) / "locale"
TRANSLATED = ("de", "es")
DOMAINS = ("django", "djangojs")
CATALOGS = [LOCALE / lang / "LC_MESSAGES" / f"{domain}.po" for lang in TRANSLATED for domain in DOMAINS]
# %(name)s, %s, %d, %.1f…; "%%" is a literal percent sign, not a placeholder.
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx%]")


def _id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.name}"


def _placeholders(text: str) -> list[str]:
    return sorted(match for match in PLACEHOLDER.findall(text) if match != "%%")


def _pairs(entry: polib.POEntry) -> list[tuple[str, str]]:
    """(source, translation) for each form of the entry: plural forms after the first answer
    to msgid_plural."""
    if not entry.msgid_plural:
        return [(entry.msgid, entry.msgstr)]
    return [(entry.msgid if n == 0 else entry.msgid_plural, text) for n, text in sorted(entry.msgstr_plural.items())]


# --- The catalogs themselves -------------------------------------------------------------------


def test_every_language_has_both_catalogs_compiled():
    for po in CATALOGS:
        assert po.is_file(), f"{_id(po)} is missing: run scripts/i18n.sh"
        assert po.with_suffix(".mo").is_file(), f"{_id(po)} is not compiled: run scripts/i18n.sh"


@pytest.mark.parametrize("po_path", CATALOGS, ids=_id)
def test_every_entry_is_translated_and_none_is_fuzzy(po_path):
    po = polib.pofile(str(po_path))
    assert not po.metadata_is_fuzzy, "the header is marked fuzzy"
    assert po.metadata.get("Language") == po_path.parent.parent.name
    assert "nplurals=" in po.metadata.get("Plural-Forms", "")
    live = [entry for entry in po if not entry.obsolete]
    assert live, "an empty catalog: was makemessages run from the project root?"
    untranslated = [entry.msgid for entry in live if not entry.translated() and "fuzzy" not in entry.flags]
    fuzzy = [entry.msgid for entry in live if "fuzzy" in entry.flags]
    assert not untranslated, f"untranslated in {_id(po_path)}: {untranslated}"
    assert not fuzzy, f"fuzzy (check the guess, then remove the flag) in {_id(po_path)}: {fuzzy}"


@pytest.mark.parametrize("po_path", CATALOGS, ids=_id)
def test_translations_keep_every_placeholder(po_path):
    po = polib.pofile(str(po_path))
    for entry in po:
        for source, text in _pairs(entry):
            assert _placeholders(text) == _placeholders(source), f"{_id(po_path)}: {source!r} → {text!r}"
        if "python-format" in entry.flags:
            # Formatting must work as the code does it: with a dict of every named value.
            names = dict.fromkeys(re.findall(r"%\((\w+)\)", entry.msgid + entry.msgid_plural), 7)
            for _, text in _pairs(entry):
                assert text % names if names else text


@pytest.mark.parametrize("po_path", CATALOGS, ids=_id)
def test_the_committed_mo_is_compiled_from_the_po_next_to_it(po_path, tmp_path):
    """Fails when a .po was edited (or makemessages run) without compiling: scripts/i18n.sh."""
    fresh = tmp_path / "fresh.mo"
    polib.pofile(str(po_path)).save_as_mofile(str(fresh))
    with fresh.open("rb") as f:
        expected = gettext.GNUTranslations(f)
    with po_path.with_suffix(".mo").open("rb") as f:
        committed = gettext.GNUTranslations(f)
    # The header (key "") is left out: only its plural rule matters, compared below.
    expected_catalog = {key: value for key, value in expected._catalog.items() if key != ""}  # type: ignore[attr-defined]
    committed_catalog = {key: value for key, value in committed._catalog.items() if key != ""}  # type: ignore[attr-defined]
    assert committed_catalog == expected_catalog, f"{_id(po_path.with_suffix('.mo'))} is stale: run scripts/i18n.sh"
    assert committed.info().get("plural-forms") == expected.info().get("plural-forms")


# --- The chat page and the JavaScript catalog --------------------------------------------------


@pytest.mark.django_db
def test_the_chat_page_speaks_the_browsers_language(client):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="de">' in html
    assert "Mit einer Person sprechen" in html and "Chat beenden" in html and "Bewertung senden" in html
    assert 'placeholder="Schreiben Sie Ihre Frage…"' in html
    assert "Talk to a person" not in html
    # The catalog comes before every other script, so gettext() exists when they run.
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts[0] == "/jsi18n/de.js"

    spanish = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<html lang="es">' in spanish and "Hablar con una persona" in spanish and "/jsi18n/es.js" in spanish


@pytest.mark.django_db
def test_the_chat_page_is_english_for_other_languages(client):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert '<html lang="en">' in html and "Talk to a person" in html and "/jsi18n/en.js" in html


@pytest.mark.django_db
def test_the_javascript_catalog_has_the_scripts_strings_and_can_be_cached(client):
    response = client.get("/jsi18n/de.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "max-age=" in response["Cache-Control"] and "public" in response["Cache-Control"]
    body = response.content.decode()
    assert '"Not sent": "Nicht gesendet"' in body
    assert '"Wrong product": "Falsches Produkt"' in body
    assert "interpolate" in body and "ngettext" in body
    # Our strings only: the admin's JavaScript catalog is not shipped to shoppers.
    assert "Available %s" not in body

    spanish = client.get("/jsi18n/es.js").content.decode()
    assert '"Wrong product": "Producto equivocado"' in spanish
    assert client.get("/jsi18n/en.js").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["xx", "fr", "de-DE", "..", "en-us"])
def test_the_javascript_catalog_refuses_languages_the_chat_does_not_speak(client, lang):
    assert client.get(f"/jsi18n/{lang}.js").status_code == 404


# --- Words the server sends or stores ----------------------------------------------------------


def test_error_messages_are_read_in_the_active_language():
    error = InvalidJSON()
    assert error.message.startswith("That message could not be read")
    with translation.override("de"):
        assert error.message == "Diese Nachricht konnte nicht gelesen werden: Sie muss ein JSON-Objekt sein."
        assert error.as_frame()["message"] == error.message
        assert UpstreamUnavailable().message.startswith("Der Assistent ist gerade nicht erreichbar")
        assert ChatError().message.startswith("Bei uns ist etwas schiefgelaufen")
    with translation.override("es"):
        assert TooManyConnections().message.startswith("Hay demasiadas ventanas de chat abiertas")
    # A message given by the caller is kept as given.
    with translation.override("de"):
        assert ChatError("As given.").message == "As given."


def _refusal(data: bytes) -> MediaRefused:
    with pytest.raises(MediaRefused) as caught:
        media_sniff(data)
    return caught.value


def test_media_refusals_are_worded_when_read_not_when_raised():
    # Uploads are checked in a worker thread with no language active: the words must follow
    # the language of whoever reads the refusal.
    refused = _refusal(b"%PDF-1.7\n" + b"\x00" * 64)
    assert refused.code == "pdf_not_accepted"
    assert refused.message.startswith("That file is a PDF.") and "GIF or HEIC" in refused.message
    with translation.override("de"):
        assert refused.message.startswith("Diese Datei ist ein PDF.")
        assert "(JPEG, PNG, WebP, GIF oder HEIC)" in refused.message
    with translation.override("es"):
        assert refused.message.startswith("Ese archivo es un PDF.") and "GIF o HEIC" in refused.message
    with translation.override("de"):
        assert _refusal(b"").message.startswith("Diese Datei ist leer (0 Byte).")


def _conversation(language: str) -> Conversation:
    return Conversation.objects.create(owner_hash=uuid.uuid4().hex * 2, language=language)


def _notice_text(conversation: Conversation, code: str) -> str:
    return Message.objects.get(conversation=conversation, notice_code=code).text


@pytest.mark.django_db
def test_notices_are_stored_in_the_conversations_language_whatever_is_active(settings):
    settings.SHOP_CONTACT = "help@shop.example"
    german, spanish, unset = _conversation("de"), _conversation("es"), _conversation("")
    staff = get_user_model().objects.create_user("ana", first_name="Ana")
    with translation.override("en"):  # e.g. a staff member's English page acted
        for conversation in (german, spanish, unset):
            states.conversation_handoff_request(conversation_id=conversation.pk, seq=1, end_seq=2, staff_online=False)
            states.conversation_take(conversation_id=conversation.pk, user=staff, seq=3, end_seq=4)
            states.conversation_close(conversation_id=conversation.pk, user=staff, seq=5, end_seq=6)

    handoff = _notice_text(german, "handoff_requested")
    assert handoff.startswith("Sie möchten mit einer Person sprechen.") and "unter help@shop.example." in handoff
    assert _notice_text(german, "staff_joined") == "Ana aus unserem Team ist dem Chat beigetreten."
    assert _notice_text(german, "closed") == "Ana hat den Chat beendet."
    assert _notice_text(spanish, "handoff_requested").startswith("Has pedido hablar con una persona.")
    assert _notice_text(spanish, "staff_joined") == "Ana, de nuestro equipo, se ha unido al chat."
    assert _notice_text(unset, "handoff_requested").startswith("You asked to talk to a person.")
    assert _notice_text(unset, "staff_joined") == "Ana from our team joined the chat."


@pytest.mark.django_db
def test_a_shopper_ending_a_german_chat_gets_a_german_notice():
    conversation = _conversation("de")
    with translation.override("es"):
        states.conversation_close(conversation_id=conversation.pk, seq=1, end_seq=2)
    assert _notice_text(conversation, "closed") == "Der Chat wurde beendet."


@pytest.mark.django_db
def test_the_offline_assistant_answers_in_the_language_and_number_format():
    product = Product.objects.create(handle="trail-shoe", title="Trail Shoe")
    for size, quantity in (("40", 2), ("41", 0), ("42", 5)):
        Variant.objects.create(product=product, option1=size, price=Decimal("129.50"), inventory_quantity=quantity)
    products = list(Product.objects.prefetch_related("variants"))
    with translation.override("de"):
        text = offline_answer(products=products, currency="EUR", contact="hilfe@shop.example")
    assert text.startswith("Ich bin der Offline-Assistent des Shops")
    assert "Das habe ich gefunden:" in text
    assert "**Trail Shoe** — 129,50 EUR; auf Lager: 40, 42" in text
    assert "erreichen Sie das Team des Shops unter hilfe@shop.example." in text
    with translation.override("es"):
        assert "No he encontrado ningún producto" in offline_answer(products=[], currency="EUR")


async def test_the_offline_responder_can_be_told_its_language():
    responder = OfflineResponder(unavailable=True, language="es")
    pieces = [event.text async for event in responder.stream(ChatRequest(messages=[])) if isinstance(event, TextDelta)]
    assert "".join(pieces).startswith("Ahora mismo no se puede contactar con el asistente")


@pytest.mark.django_db(transaction=True)
async def test_an_error_on_the_socket_is_worded_in_the_sockets_language():
    """Frames are encoded without switching languages (chat/protocol.py frame_encode); those that
    carry a lazy message still get the socket's language, whatever is active."""
    communicator = WebsocketCommunicator(application, "/ws/chat/?lang=de", headers=[(b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    assert json.loads(await communicator.receive_from())["type"] == "conversation"
    translation.activate("es")
    try:
        await communicator.send_to(
            text_data=json.dumps({"type": "message", "text": "  ", "client_msg_id": str(uuid.uuid4())})
        )
        error = json.loads(await communicator.receive_from())
    finally:
        translation.deactivate()
    assert error["type"] == "error" and error["code"] == "message_empty"
    assert error["message"] == "Bitte geben Sie eine Nachricht ein, bevor Sie sie senden."
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_refused_widget_socket_says_why_in_its_language():
    communicator = WebsocketCommunicator(
        application, "/ws/chat/?site=pk_nothing_here&lang=de", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected
    error = json.loads(await communicator.receive_from())
    assert error["code"] == "site_unknown"
    assert error["message"] == gettext_in("de", "This chat is not set up for this website (unknown site key).")
    assert error["message"] != "This chat is not set up for this website (unknown site key)."
    await communicator.disconnect()


def gettext_in(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)
