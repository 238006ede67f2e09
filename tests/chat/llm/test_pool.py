"""The request pool: caps, fairness, places in line, the rate window and cancellation."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest

from chat.llm.pool import EndpointLimits, RequestPool, request_pool

UNLIMITED = EndpointLimits()
ONE_AT_A_TIME = EndpointLimits(concurrency=1)


async def settle() -> None:
    """Let every runnable task take its next steps (enter the line, report, start)."""
    for _ in range(20):
        await asyncio.sleep(0)


def idle(pool: RequestPool) -> bool:
    stats = pool.stats()
    return bool(stats["active"] == 0 and stats["waiting"] == 0 and stats["endpoints"] == {})


class Recorder:
    """Runs requests that hold their slot until released, noting starts and places in line."""

    def __init__(self, pool: RequestPool) -> None:
        self.pool = pool
        self.started: list[str] = []
        self.positions: dict[str, list[int]] = {}
        self.release: dict[str, asyncio.Event] = {}

    def request(self, name: str, endpoint: str = "a", limits: EndpointLimits = ONE_AT_A_TIME) -> asyncio.Task[None]:
        self.positions[name] = []
        self.release[name] = asyncio.Event()

        async def run() -> None:
            async with self.pool.slot(endpoint, limits, on_wait=self.positions[name].append):
                self.started.append(name)
                await self.release[name].wait()

        return asyncio.create_task(run(), name=name)

    async def queue(self, *names: str, endpoint: str = "a", limits: EndpointLimits = ONE_AT_A_TIME) -> list:
        """Start requests one after another, so they join the line in this order."""
        tasks = []
        for name in names:
            tasks.append(self.request(name, endpoint, limits))
            await settle()
        return tasks

    async def finish(self, name: str) -> None:
        self.release[name].set()
        await settle()


async def test_global_cap_holds_under_fifty_concurrent_callers():
    pool = RequestPool(global_concurrency=5)
    running = peak = 0

    async def call(i: int) -> None:
        nonlocal running, peak
        async with pool.slot(f"endpoint-{i % 3}", UNLIMITED):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.005)
            running -= 1

    await asyncio.gather(*(call(i) for i in range(50)))
    assert peak == 5
    assert idle(pool)


async def test_endpoint_cap_holds_while_other_endpoints_use_the_rest():
    pool = RequestPool(global_concurrency=50)
    running = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    async def call(endpoint: str, limits: EndpointLimits) -> None:
        async with pool.slot(endpoint, limits):
            running[endpoint] += 1
            peak[endpoint] = max(peak[endpoint], running[endpoint])
            await asyncio.sleep(0.005)
            running[endpoint] -= 1

    await asyncio.gather(
        *(call("a", EndpointLimits(concurrency=3)) for _ in range(20)),
        *(call("b", UNLIMITED) for _ in range(20)),
    )
    assert peak == {"a": 3, "b": 20}
    assert idle(pool)


async def test_request_for_free_endpoint_is_not_blocked_behind_saturated_one():
    pool = RequestPool(global_concurrency=4)
    rec = Recorder(pool)
    await rec.queue("a1", "a2", "a3", "a4")  # a1 runs, three wait for endpoint a
    await rec.queue("b1", endpoint="b")

    assert rec.started == ["a1", "b1"]
    assert rec.positions["b1"] == []  # started at once: never told to wait
    assert pool.stats()["endpoints"]["a"] == {"active": 1, "waiting": 3, "recent_starts": 0}
    for name in ("a1", "a2", "a3", "a4", "b1"):
        await rec.finish(name)
    assert idle(pool)


async def test_global_cap_goes_in_arrival_order_among_those_who_could_start():
    pool = RequestPool(global_concurrency=2)
    rec = Recorder(pool)
    await rec.queue("x", endpoint="x")
    await rec.queue("a1", "a2")  # a2 waits for endpoint a, which a1 holds, and for the global cap
    await rec.queue("b1", endpoint="b")
    await rec.queue("c1", endpoint="c")

    await rec.finish("x")  # one global slot: a2 still cannot start, so b1 goes ahead of it
    assert rec.started == ["x", "a1", "b1"]
    await rec.finish("a1")  # a2 and c1 both could start now: a2 came first
    assert rec.started == ["x", "a1", "b1", "a2"]
    for name in ("b1", "a2", "c1"):
        await rec.finish(name)
    assert rec.started == ["x", "a1", "b1", "a2", "c1"]
    assert rec.positions == {"x": [], "a1": [], "a2": [1], "b1": [1], "c1": [2, 1]}
    assert idle(pool)


async def test_starts_follow_arrival_order_per_endpoint():
    pool = RequestPool(global_concurrency=10)
    rec = Recorder(pool)
    names = [f"r{i}" for i in range(8)]
    await rec.queue(*names)
    for name in names:
        await rec.finish(name)
    assert rec.started == names
    assert idle(pool)


async def test_places_in_line_are_reported_and_updated_as_the_line_moves():
    pool = RequestPool(global_concurrency=10)
    rec = Recorder(pool)
    await rec.queue("holder", "w1", "w2", "w3")
    for name in ("holder", "w1", "w2", "w3"):
        await rec.finish(name)

    assert rec.positions == {"holder": [], "w1": [1], "w2": [2, 1], "w3": [3, 2, 1]}
    assert idle(pool)


async def test_places_count_the_global_line_too():
    pool = RequestPool(global_concurrency=1)
    rec = Recorder(pool)
    await rec.queue("x", endpoint="x")
    await rec.queue("a1", endpoint="a")
    await rec.queue("b1", endpoint="b")
    for name in ("x", "a1", "b1"):
        await rec.finish(name)
    assert rec.positions == {"x": [], "a1": [1], "b1": [2, 1]}


async def test_rate_limit_delays_requests_until_the_sliding_window_allows():
    clock_reads = 0

    def clock() -> float:
        nonlocal clock_reads
        clock_reads += 1
        return time.monotonic()

    window = 0.3
    pool = RequestPool(global_concurrency=10, clock=clock, rate_window=window)
    limits = EndpointLimits(requests_per_minute=2)
    started_at: dict[str, float] = {}
    positions: dict[str, list[int]] = {name: [] for name in ("r1", "r2", "r3", "r4")}

    async def call(name: str) -> None:
        async with pool.slot("a", limits, on_wait=positions[name].append):
            started_at[name] = time.monotonic()

    await call("r1")
    await asyncio.sleep(0.1)
    await call("r2")
    reads_before_waiting = clock_reads
    # r3 may start when r1 leaves the window, r4 when r2 does: the window slides.
    await asyncio.gather(call("r3"), call("r4"))

    assert positions == {"r1": [], "r2": [], "r3": [1], "r4": [2, 1]}
    for early, late in (("r1", "r3"), ("r2", "r4")):
        waited = started_at[late] - started_at[early]
        assert window - 0.01 <= waited < window + 0.1, (late, waited)
    # Woken by the window's own timers, not by polling.
    assert clock_reads - reads_before_waiting < 12
    assert pool.stats()["endpoints"]["a"]["recent_starts"] == 2


async def test_cancelled_waiter_leaves_the_line_without_leaking_a_slot():
    pool = RequestPool(global_concurrency=10)
    rec = Recorder(pool)
    _, w1, _ = await rec.queue("holder", "w1", "w2")

    w1.cancel()
    await settle()
    assert rec.positions["w2"] == [2, 1]
    await rec.finish("holder")
    assert rec.started == ["holder", "w2"]
    await rec.finish("w2")
    assert w1.cancelled()
    assert idle(pool)


async def test_slot_handed_to_a_waiter_cancelled_at_that_moment_is_passed_on():
    pool = RequestPool(global_concurrency=10)
    rec = Recorder(pool)
    _, w1, _ = await rec.queue("holder", "w1", "w2")

    rec.release["holder"].set()
    await asyncio.sleep(0)  # the holder releases: w1 is handed the slot but has not run yet
    w1.cancel()
    await settle()

    assert rec.started == ["holder", "w2"]
    await rec.finish("w2")
    assert w1.cancelled()
    assert idle(pool)


async def test_waiting_can_be_bounded_with_a_timeout():
    pool = RequestPool(global_concurrency=1)
    rec = Recorder(pool)
    await rec.queue("holder")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02), pool.slot("a", ONE_AT_A_TIME):
            pass
    await rec.finish("holder")
    assert idle(pool)


async def test_caps_hold_and_nothing_leaks_when_many_waiters_give_up():
    pool = RequestPool(global_concurrency=4)
    caps = {"a": 1, "b": 2, "c": None}
    running = dict.fromkeys(caps, 0)
    total = peak_total = 0
    rng = random.Random(7)

    async def on_wait(position: int) -> None:
        await asyncio.sleep(0)  # a callback that yields, so cancellation can land inside it

    async def call(endpoint: str) -> None:
        nonlocal total, peak_total
        async with pool.slot(endpoint, EndpointLimits(concurrency=caps[endpoint]), on_wait=on_wait):
            running[endpoint] += 1
            total += 1
            peak_total = max(peak_total, total)
            cap = caps[endpoint]
            assert cap is None or running[endpoint] <= cap
            try:
                await asyncio.sleep(rng.random() * 0.004)
            finally:  # holders are cancelled too
                running[endpoint] -= 1
                total -= 1

    tasks = [asyncio.create_task(call(rng.choice("abc"))) for _ in range(150)]
    for _ in range(60):
        await asyncio.sleep(rng.random() * 0.002)
        rng.choice(tasks).cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert peak_total == 4
    assert idle(pool)


async def test_body_that_raises_releases_its_slot():
    pool = RequestPool(global_concurrency=1)
    with pytest.raises(RuntimeError):
        async with pool.slot("a", ONE_AT_A_TIME):
            raise RuntimeError("upstream blew up")
    assert idle(pool)
    async with pool.slot("a", ONE_AT_A_TIME):
        assert pool.stats()["active"] == 1


async def test_failing_callbacks_are_logged_and_the_line_still_moves(caplog):
    pool = RequestPool(global_concurrency=1)
    rec = Recorder(pool)
    await rec.queue("holder")
    started: list[str] = []

    def sync_failure(position: int) -> None:
        raise ValueError("socket gone")

    async def async_failure(position: int) -> None:
        raise ValueError("socket gone")

    async def call(name: str, on_wait) -> None:
        async with pool.slot("a", ONE_AT_A_TIME, on_wait=on_wait):
            started.append(name)

    with caplog.at_level(logging.ERROR, logger="chat.llm.pool"):
        tasks = [asyncio.create_task(call("sync", sync_failure))]
        await settle()
        tasks.append(asyncio.create_task(call("async", async_failure)))
        await settle()
        await rec.finish("holder")
        await asyncio.gather(*tasks)

    assert started == ["sync", "async"]
    failures = [r.getMessage() for r in caplog.records if "on_wait callback failed" in r.getMessage()]
    assert len(failures) == 2
    assert idle(pool)


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        EndpointLimits(concurrency=0)
    with pytest.raises(ValueError):
        EndpointLimits(requests_per_minute=-1)
    with pytest.raises(ValueError):
        RequestPool(global_concurrency=0)


def test_each_event_loop_gets_its_own_pool_sized_from_settings(settings):
    settings.LLM_MAX_CONCURRENCY = 7

    async def pools() -> tuple[RequestPool, RequestPool]:
        return request_pool(), request_pool()

    first, again = asyncio.run(pools())
    second, _ = asyncio.run(pools())
    assert first is again
    assert first is not second
    assert first.stats()["capacity"] == 7
