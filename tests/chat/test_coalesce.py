from __future__ import annotations

import asyncio

from chat.coalesce import DeltaCoalescer


async def test_first_delta_goes_at_once_then_deltas_are_joined_within_the_interval():
    sent: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()

    async def publish(text: str) -> None:
        sent.append((loop.time(), text))

    coalescer = DeltaCoalescer(publish=publish, interval=0.05)
    start = loop.time()
    coalescer.add("a")
    await asyncio.sleep(0.005)
    assert [text for _, text in sent] == ["a"] and sent[0][0] - start < 0.01
    for piece in "bcd":
        coalescer.add(piece)
    await asyncio.sleep(0.1)
    assert [text for _, text in sent] == ["a", "bcd"]
    assert sent[1][0] - sent[0][0] >= 0.045
    coalescer.add("e")
    coalescer.add("f")
    await coalescer.close()
    assert "".join(text for _, text in sent) == "abcdef"


async def test_close_with_nothing_buffered_sends_nothing():
    sent: list[str] = []

    async def publish(text: str) -> None:
        sent.append(text)

    coalescer = DeltaCoalescer(publish=publish, interval=0.05)
    await coalescer.close()
    await coalescer.close()
    assert sent == []
