"""Token counts without the network, for replies whose endpoint sent no usage (a stopped or cut
stream never gets its usage chunk).

The o200k_base vocabulary ships with the project (tiktoken_cache/README.md says where it came
from) and is read from that file directly: tiktoken would otherwise download it, and its own
loader copies even a local file into TIKTOKEN_CACHE_DIR (or fails when that is not writable).
Message counts are estimates: OpenAI's published recipe for chat models plus fixed guesses for
images and audio. Tool definitions sent with a request are not counted.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import tiktoken

from chat.llm.types import Usage

# tiktoken's own cache name for o200k_base (the sha1 of its download URL), so the directory also
# works as TIKTOKEN_CACHE_DIR; the sha256 is the one tiktoken checks downloads against.
O200K_FILE = Path(__file__).resolve().parent / "tiktoken_cache" / "fb374d419588a4632f3f557e76b4b70aebbca790"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# As in tiktoken_ext/openai_public.py (0.14.0); tests compare it with tiktoken's own.
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_SPECIAL_TOKENS = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

# OpenAI's recipe ("How to count tokens with tiktoken", gpt-4o and later): every message is
# wrapped in <|start|>{role}<|message|>{content}<|end|>, and the reply is primed with
# <|start|>assistant<|message|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3
# Images (gpt-4o style tiles): 85 base + 170 per 512 px tile. "low" is the base only; "high" and
# "auto" are counted as a 1024×1024 image (scaled to 768×768: 4 tiles), since the size is unknown.
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS_HIGH = 765
# Audio: about one token per 100 ms of input. The duration comes from the decoded size: a WAV
# header's byte rate when there is one, else 16 kHz 16-bit mono for WAV and 128 kbit/s for MP3.
AUDIO_TOKENS_PER_SECOND = 10
AUDIO_BYTES_PER_SECOND = {"wav": 32_000, "mp3": 16_000}


class TokenizerFileError(RuntimeError):
    """The shipped vocabulary file is not the o200k_base we expect."""


def load_encoding(path: Path) -> tiktoken.Encoding:
    """o200k_base from a `.tiktoken` file (base64 token, space, rank per line). Raises
    TokenizerFileError when the file's sha256 is not o200k_base's."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise TokenizerFileError(
            f"{path} has sha256 {digest}, not o200k_base's {O200K_SHA256}; see tiktoken_cache/README.md"
        )
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        name="o200k_base", pat_str=O200K_PATTERN, mergeable_ranks=ranks, special_tokens=O200K_SPECIAL_TOKENS
    )


@cache
def encoding() -> tiktoken.Encoding:
    """o200k_base, loaded once per process (about 0.2 s) from the shipped file."""
    return load_encoding(O200K_FILE)


@lru_cache(maxsize=4096)
def text_tokens(text: str) -> int:
    # Special-token text ("<|endoftext|>") typed by a shopper is ordinary text to the model.
    # Cached: every turn re-counts the whole history (chat/compaction.py), so without it a
    # conversation's older messages are tokenised again on each turn (~4 ms per 2 KB message).
    return len(encoding().encode_ordinary(text))


def message_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of OpenAI-style chat messages (content as a string or parts)."""
    total = TOKENS_REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE + _string_tokens(message.get("role")) + _content_tokens(message.get("content"))
        if message.get("name"):
            total += TOKENS_PER_NAME + _string_tokens(message["name"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += _string_tokens(function.get("name")) + _string_tokens(function.get("arguments"))
    return total


def usage_estimate(*, messages: Sequence[Mapping[str, Any]], completion_text: str) -> Usage:
    """A Usage counted here (estimated=True) for a reply the endpoint reported none for."""
    prompt = message_tokens(messages)
    completion = text_tokens(completion_text)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion, estimated=True)


def _string_tokens(value: Any) -> int:
    return text_tokens(value) if isinstance(value, str) else 0


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if not isinstance(content, list):
        return 0
    return sum(_part_tokens(part) for part in content if isinstance(part, Mapping))


def _part_tokens(part: Mapping[str, Any]) -> int:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        return _string_tokens(part.get(kind))
    if kind == "image_url":
        image = part.get("image_url") or {}
        return IMAGE_TOKENS_LOW if image.get("detail") == "low" else IMAGE_TOKENS_HIGH
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return _audio_tokens(audio.get("data") or "", str(audio.get("format") or "wav"))
    return 0  # files and unknown parts: no basis for a guess


def _audio_tokens(data: str, audio_format: str) -> int:
    size = len(data) * 3 // 4
    rate = _wav_byte_rate(data) if audio_format == "wav" else 0
    rate = rate or AUDIO_BYTES_PER_SECOND.get(audio_format, AUDIO_BYTES_PER_SECOND["mp3"])
    return math.ceil(size / rate * AUDIO_TOKENS_PER_SECOND)


def _wav_byte_rate(data: str) -> int:
    """The byte rate in a canonical WAV header (RIFF, WAVE, then the fmt chunk), else 0."""
    try:
        header = base64.b64decode(data[:48], validate=True)
    except ValueError:
        return 0
    if len(header) < 32 or header[:4] != b"RIFF" or header[8:16] != b"WAVEfmt ":
        return 0
    return int.from_bytes(header[28:32], "little")
