"""The cache-invalidation channel's in-process half: who is told what, and what is ignored."""

from __future__ import annotations

from paycore.invalidation import CacheKind, InvalidationChannel
from paycore.invalidation.channel import encode

STRAYS = (
    b"",
    b"not json",
    b"[]",
    b'{"kind": "nope", "key": "x"}',
    b'{"kind": "tenant_standing", "key": 7}',
)


def recording_channel() -> tuple[InvalidationChannel, list[str | None]]:
    channel = InvalidationChannel()
    dropped: list[str | None] = []
    channel.subscribe(CacheKind.TENANT_STANDING, dropped.append)
    return channel, dropped


class TestInvalidationChannel:
    async def test_publish_tells_this_process_at_once(self) -> None:
        channel, dropped = recording_channel()
        await channel.publish(CacheKind.TENANT_STANDING, "ten_1")
        await channel.publish(CacheKind.TENANT_STANDING)
        assert dropped == ["ten_1", None]

    def test_a_message_from_another_process_is_applied(self) -> None:
        channel, dropped = recording_channel()
        channel.receive(encode(CacheKind.TENANT_STANDING, "ten_2").encode())
        assert dropped == ["ten_2"]

    def test_anything_else_on_the_channel_is_ignored_without_raising(self) -> None:
        channel, dropped = recording_channel()
        for stray in STRAYS:
            channel.receive(stray)
        assert dropped == []

    def test_after_a_gap_in_listening_everything_is_forgotten(self) -> None:
        channel, dropped = recording_channel()
        channel.invalidate_everything()
        assert dropped == [None]
