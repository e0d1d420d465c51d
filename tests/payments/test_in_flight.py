"""Copies of one event in one process: the first stores it, the others wait for it without a
connection, and take over only when the first failed (a copy is never answered "duplicate" for an
event that was not stored)."""

from __future__ import annotations

import asyncio

import pytest

from paycore.payments.in_flight import InFlight


class TestInFlight:
    async def test_copies_wait_for_the_first_and_answer_stored(self) -> None:
        in_flight = InFlight()
        release = asyncio.Event()
        calls = 0

        async def store() -> str:
            nonlocal calls
            calls += 1
            await release.wait()
            return "stored now"

        tasks = [asyncio.create_task(in_flight.first_or_wait("evt", store, "duplicate")) for _ in range(5)]
        await asyncio.sleep(0)
        release.set()
        assert sorted(await asyncio.gather(*tasks)) == ["duplicate"] * 4 + ["stored now"]
        assert calls == 1

    async def test_a_copy_takes_over_when_the_first_failed(self) -> None:
        in_flight = InFlight()
        attempts: list[int] = []

        async def store() -> str:
            attempts.append(len(attempts))
            await asyncio.sleep(0)
            if len(attempts) == 1:
                raise RuntimeError("the database went away")
            return "stored now"

        first = asyncio.create_task(in_flight.first_or_wait("evt", store, "duplicate"))
        second = asyncio.create_task(in_flight.first_or_wait("evt", store, "duplicate"))
        with pytest.raises(RuntimeError):
            await first
        assert await second == "stored now"
        assert attempts == [0, 1]

    async def test_other_events_do_not_wait(self) -> None:
        in_flight = InFlight()
        blocked = asyncio.Event()

        async def slow() -> str:
            await blocked.wait()
            return "a"

        async def fast() -> str:
            return "b"

        waiting = asyncio.create_task(in_flight.first_or_wait("a", slow, "duplicate"))
        await asyncio.sleep(0)
        assert await in_flight.first_or_wait("b", fast, "duplicate") == "b"
        blocked.set()
        assert await waiting == "a"
