"""Token counting with the shipped o200k_base file: exact text counts, recipe-based message
estimates, and proof that nothing is downloaded."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chat.llm import tokens
from chat.llm.tokens import encoding, message_tokens, text_tokens, usage_estimate

ROOT = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter with every way out closed: proxies pointing at a dead port, sockets
# refusing to connect, and tiktoken's cache pointing at an empty directory.
OFFLINE_SCRIPT = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError("network used")

socket.socket.connect = refuse
socket.create_connection = refuse
{body}
"""


def run_offline(body: str, cache_dir: Path) -> str:
    env = {
        **os.environ,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "TIKTOKEN_CACHE_DIR": str(cache_dir),
        "DJANGO_SETTINGS_MODULE": "supportbot.settings",
        "SUPPORTBOT_ENV_FILE": "/dev/null",
    }
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT.format(body=body)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_encoding_loads_from_the_shipped_file_with_the_network_unusable(tmp_path):
    out = run_offline("from chat.llm.tokens import text_tokens\nprint(text_tokens('hello world'))", tmp_path)
    assert out == "2"
    assert list(tmp_path.iterdir()) == []  # nothing fetched or copied into tiktoken's cache


def test_shipped_file_is_what_tiktoken_itself_would_use_for_o200k_base(tmp_path):
    """With the shipped directory as its cache, tiktoken's own o200k_base (which would otherwise
    download) loads offline and equals ours: same file name, pattern, vocabulary, special tokens."""
    body = """
import tiktoken
from chat.llm.tokens import O200K_FILE, encoding
ref, ours = tiktoken.get_encoding("o200k_base"), encoding()
assert ref._pat_str == ours._pat_str
assert ref._special_tokens == ours._special_tokens
assert ref._mergeable_ranks == ours._mergeable_ranks
print("same")
"""
    assert run_offline(body, tokens.O200K_FILE.parent) == "same"


def test_known_counts():
    assert encoding().name == "o200k_base"
    assert encoding().encode_ordinary("hello world") == [24912, 2375]
    assert text_tokens("hello world") == 2
    assert text_tokens("An answer of a few words.") == 7
    assert text_tokens("Grüße aus München – 日本語のテキスト") == 12
    assert text_tokens("") == 0


def test_encoding_is_loaded_once_per_process():
    assert encoding() is encoding()


def test_special_token_text_is_counted_as_ordinary_text():
    assert text_tokens("<|endoftext|>") == 7


def test_a_file_that_is_not_o200k_base_is_refused(tmp_path):
    fake = tmp_path / "fb374d419588a4632f3f557e76b4b70aebbca790"
    fake.write_bytes(tokens.O200K_FILE.read_bytes()[:-10] + b"\n")
    with pytest.raises(tokens.TokenizerFileError, match="sha256"):
        tokens.load_encoding(fake)


def test_one_user_message_follows_the_openai_recipe():
    # 3 per message + "user" (1) + "hello world" (2) + 3 for the reply priming
    assert message_tokens([{"role": "user", "content": "hello world"}]) == 9
    assert message_tokens([]) == 3


def test_name_adds_one_token_plus_its_own():
    plain = message_tokens([{"role": "user", "content": "hello world"}])
    named = message_tokens([{"role": "user", "name": "hello", "content": "hello world"}])
    assert named == plain + 1 + text_tokens("hello")


def test_text_parts_count_like_string_content():
    parts = [{"type": "text", "text": "hello"}, {"type": "text", "text": " world"}]
    assert message_tokens([{"role": "user", "content": parts}]) == 9


def test_images_get_a_fixed_estimate_by_detail():
    def with_image(detail: str | None) -> int:
        image: dict[str, str] = {"url": "data:image/png;base64,AAAA"}
        if detail:
            image["detail"] = detail
        return message_tokens([{"role": "user", "content": [{"type": "image_url", "image_url": image}]}])

    empty = message_tokens([{"role": "user", "content": []}])
    assert with_image("low") - empty == tokens.IMAGE_TOKENS_LOW == 85
    assert with_image("high") - empty == tokens.IMAGE_TOKENS_HIGH == 765
    assert with_image(None) - empty == 765
    assert with_image("auto") - empty == 765


def wav(seconds: float, *, rate: int, channels: int) -> str:
    byte_rate = rate * channels * 2
    data = b"\0" * int(byte_rate * seconds)
    header = (
        b"RIFF"
        + (36 + len(data)).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + channels.to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + byte_rate.to_bytes(4, "little")
        + (channels * 2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + len(data).to_bytes(4, "little")
    )
    return base64.b64encode(header + data).decode()


def audio_part_tokens(data: str, audio_format: str) -> int:
    part = {"type": "input_audio", "input_audio": {"data": data, "format": audio_format}}
    return message_tokens([{"role": "user", "content": [part]}]) - message_tokens([{"role": "user", "content": []}])


def test_audio_is_estimated_at_ten_tokens_a_second_from_its_size():
    # The WAV header's byte rate gives the duration whatever the sample rate or channels.
    assert audio_part_tokens(wav(2, rate=16_000, channels=1), "wav") == 21  # 2 s + the 44-byte header, rounded up
    assert audio_part_tokens(wav(2, rate=48_000, channels=2), "wav") == 21
    # MP3 is assumed to be 128 kbit/s: 3 s is 48,000 bytes.
    assert audio_part_tokens(base64.b64encode(b"\xff" * 48_000).decode(), "mp3") == 30


def test_tool_calls_and_tool_results_are_counted():
    call = {"id": "call_1", "type": "function", "function": {"name": "product_search", "arguments": '{"q":"boots"}'}}
    assistant = {"role": "assistant", "content": None, "tool_calls": [call]}
    result = {"role": "tool", "tool_call_id": "call_1", "content": "Trail boots, 89 EUR"}
    expected = (
        3
        + (3 + text_tokens("assistant") + text_tokens("product_search") + text_tokens('{"q":"boots"}'))
        + (3 + text_tokens("tool") + text_tokens("Trail boots, 89 EUR"))
    )
    assert message_tokens([assistant, result]) == expected


def test_usage_estimate_is_marked_estimated_and_adds_up():
    usage = usage_estimate(messages=[{"role": "user", "content": "hello world"}], completion_text="hello world")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 2, 11)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (0, 0)
    assert usage.estimated is True
