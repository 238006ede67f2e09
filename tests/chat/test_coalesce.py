from __future__ import annotations

import asyncio
import gc
import itertools
import time
import weakref

from chat.coalesce import DeltaCoalescer, LoopLag, _lags, loop_lag


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


async def test_a_reader_waits_for_the_due_frame_and_what_it_reads_then_goes_in_it():
    sent: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()

    async def publish(text: str) -> None:
        sent.append((loop.time(), text))

    coalescer = DeltaCoalescer(publish=publish, interval=0.05)
    coalescer.add("a")
    assert coalescer.due() is None  # the first delta goes at once: nothing to wait for
    await asyncio.sleep(0.005)
    coalescer.add("b")
    await asyncio.sleep(0)  # the coalescer sees it: the frame waits for its window
    due = coalescer.due()
    assert due is not None and not due.done()
    assert coalescer.due() is due  # one wait per frame, however many deltas it holds
    await due
    # Done just before the frame goes, not after: what the reader reads now still goes in it.
    waited = loop.time() - sent[0][0]
    assert [text for _, text in sent] == ["a"] and waited >= 0.045
    coalescer.add("c")
    coalescer.add("d")
    await asyncio.sleep(0)  # the reader waits for the network again
    assert [text for _, text in sent] == ["a", "bcd"]
    await asyncio.sleep(0.06)
    coalescer.add("e")  # after a quiet window: at once again
    assert coalescer.due() is None
    await coalescer.close()
    assert [text for _, text in sent] == ["a", "bcd", "e"]


async def test_a_reader_is_never_left_waiting_for_a_frame_that_cannot_go():
    async def publish(text: str) -> None:
        if text == "b":
            raise ConnectionError("the layer is gone")

    coalescer = DeltaCoalescer(publish=publish, interval=0.05)
    coalescer.add("a")
    await asyncio.sleep(0.005)
    coalescer.add("b")
    await asyncio.sleep(0)
    due = coalescer.due()
    assert due is not None
    await asyncio.wait_for(due, timeout=1)
    await asyncio.sleep(0.01)
    coalescer.add("c")
    assert coalescer.due() is None  # its task has ended: nothing is due any more


async def test_the_window_follows_the_loops_lag_between_the_interval_and_the_maximum():
    async def publish(text: str) -> None:
        pass

    lag = [0.0]
    adaptive = DeltaCoalescer(publish=publish, interval=0.015, max_interval=0.1, lag=lambda: lag[0])
    # No maximum, or one at or below the interval: a fixed window, whatever the lag.
    fixed = [
        DeltaCoalescer(publish=publish, interval=0.015, max_interval=maximum, lag=lambda: lag[0])
        for maximum in (None, 0.01)
    ]
    for lag[0], window in [(0.0, 0.015), (0.01, 0.015), (0.05, 0.05), (0.5, 0.1)]:
        assert adaptive.window() == window
        assert [coalescer.window() for coalescer in fixed] == [0.015, 0.015]
    for coalescer in [adaptive, *fixed]:
        await coalescer.close()


async def test_a_lagging_loop_gets_fewer_larger_frames_and_every_delta():
    loop = asyncio.get_running_loop()

    async def frames(lag: float) -> list[tuple[float, str]]:
        sent: list[tuple[float, str]] = []

        async def publish(text: str) -> None:
            sent.append((loop.time(), text))

        coalescer = DeltaCoalescer(publish=publish, interval=0.01, max_interval=0.08, lag=lambda: lag)
        for n in range(12):  # a token every 10 ms
            coalescer.add(f"{n} ")
            await asyncio.sleep(0.01)
        await coalescer.close()
        return sent

    keeping_up = await frames(0.0)
    lagging = await frames(0.3)
    for sent in (keeping_up, lagging):
        assert "".join(text for _, text in sent) == "".join(f"{n} " for n in range(12))
        assert sent[0][1] == "0 ", "the first delta still goes out at once"
    assert len(lagging) <= 3 < len(keeping_up)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(lagging)]
    assert all(gap >= 0.075 for gap in gaps[:-1]), gaps  # the last frame is the close's flush


async def test_loop_lag_measures_a_blocked_loop_recovers_and_stops_when_unused():
    lag = LoopLag(asyncio.get_running_loop(), probe=0.01, idle=0.2)
    assert lag.read() == 0.0
    await asyncio.sleep(0.03)
    assert lag.read() < 0.05
    time.sleep(0.15)  # something hogs the loop: that is the point
    await asyncio.sleep(0.001)
    assert lag.read() >= 0.1
    # Free again: it halves with every probe.
    await asyncio.sleep(0.12)
    assert lag.read() < 0.02
    # Unread for longer than `idle` it stops probing and starts again from exactly nothing (while
    # probing, it reads the last probe's lateness, never exactly 0).
    time.sleep(0.1)
    await asyncio.sleep(0.35)
    assert lag.read() == 0.0


async def test_the_running_loops_lag_is_measured_for_the_coalescers():
    assert loop_lag() == 0.0  # the first read starts the probe
    await asyncio.sleep(0.06)
    time.sleep(0.12)
    await asyncio.sleep(0.001)
    assert loop_lag() >= 0.07


def test_a_closed_loop_and_its_lag_monitor_are_not_kept_alive():
    async def coalesce_once() -> None:
        coalescer = DeltaCoalescer(publish=_ignore, interval=0.01, max_interval=0.1)
        coalescer.add("hello")
        await coalescer.close()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(coalesce_once())
    assert loop in _lags  # the coalescer asked for the loop's lag
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None


async def _ignore(text: str) -> None:
    pass
