"""API keys cached per process: served from memory only as long as a revocation made anywhere
would have reached this process (fail closed), bounded in size, refusals kept apart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from paycore.auth.key_cache import REFUSED_ENTRIES, ApiKeyCache
from paycore.auth.models import ApiKey
from paycore.auth.service import revoke_api_key
from paycore.clock import utcnow
from paycore.db import Database
from paycore.errors import AuthenticationFailed
from paycore.invalidation import CacheKind, InvalidationChannel
from tests.conftest import make_settings
from tests.factories import TEST_ACTOR, make_api_key, make_tenant


class ListeningChannel(InvalidationChannel):
    """A channel whose listener hears every process (as PostgreSQL's or Redis's does when up)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True

    @property
    def hears_every_process(self) -> bool:
        return self.up


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def started(channel: InvalidationChannel, db: Database) -> InvalidationChannel:
    await channel.start(db)
    return channel


async def new_key(db: Database, **options: Any) -> tuple[str, str, str]:
    """(plaintext, key id, tenant id)"""
    async with db.session() as session:
        tenant = await make_tenant(session)
        created = await make_api_key(session, tenant=tenant, **options)
    return created.plaintext, created.key.id, tenant.id


async def revoke_without_telling(db: Database, tenant_id: str, key_id: str) -> None:
    async with db.session() as session:
        await revoke_api_key(session, tenant_id=tenant_id, key_id=key_id, actor=TEST_ACTOR)


class StatementCounter:
    """Statements that touch `api_keys` (the test's savepoints around each session are not counted)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)
        self._engine = db.engine.sync_engine

    def _seen(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += "api_keys" in statement

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


class TestServedFromMemory:
    async def test_a_known_key_costs_no_statement_and_revocation_is_heard_at_once(self, db: Database) -> None:
        channel = await started(ListeningChannel(), db)
        cache = ApiKeyCache(make_settings(), channel, clock=Clock())
        plaintext, key_id, tenant_id = await new_key(db)
        first = await cache.authenticate(db, plaintext, now=utcnow())
        counter = StatementCounter(db)
        try:
            again = await cache.authenticate(db, plaintext, now=utcnow())
        finally:
            counter.close()
        assert (again, counter.count) == (first, 0)

        await revoke_without_telling(db, tenant_id, key_id)
        await cache.authenticate(db, plaintext, now=utcnow())  # nobody said: still trusted
        await channel.publish(CacheKind.API_KEY, key_id)
        with pytest.raises(AuthenticationFailed) as caught:
            await cache.authenticate(db, plaintext, now=utcnow())
        assert caught.value.code == "api_key_revoked"

    async def test_trusted_for_the_cache_lifetime_while_the_listener_hears_everyone(
        self, db: Database
    ) -> None:
        clock, channel = Clock(), await started(ListeningChannel(), db)
        cache = ApiKeyCache(make_settings(api_key_cache_seconds=60), channel, clock=clock)
        plaintext, key_id, tenant_id = await new_key(db)
        await cache.authenticate(db, plaintext, now=utcnow())
        await revoke_without_telling(db, tenant_id, key_id)  # a lost message
        clock.now += 59
        await cache.authenticate(db, plaintext, now=utcnow())
        clock.now += 2
        with pytest.raises(AuthenticationFailed, match="revoked"):
            await cache.authenticate(db, plaintext, now=utcnow())

    async def test_while_the_listener_is_down_an_entry_lives_only_the_unconfirmed_seconds(
        self, db: Database
    ) -> None:
        clock, channel = Clock(), await started(ListeningChannel(), db)
        cache = ApiKeyCache(make_settings(cache_unconfirmed_seconds=1), channel, clock=clock)
        plaintext, key_id, tenant_id = await new_key(db)
        await cache.authenticate(db, plaintext, now=utcnow())
        channel.up = False
        await revoke_without_telling(db, tenant_id, key_id)
        clock.now += 0.5
        await cache.authenticate(db, plaintext, now=utcnow())
        clock.now += 0.6
        with pytest.raises(AuthenticationFailed, match="revoked"):
            await cache.authenticate(db, plaintext, now=utcnow())

    async def test_one_process_without_a_shared_channel_is_unconfirmed_too(self, db: Database) -> None:
        """SQLite: `paycore keys revoke` runs in another process that cannot reach this one."""
        clock, channel = Clock(), await started(InvalidationChannel(), db)
        cache = ApiKeyCache(make_settings(cache_unconfirmed_seconds=1), channel, clock=clock)
        plaintext, key_id, tenant_id = await new_key(db)
        await cache.authenticate(db, plaintext, now=utcnow())
        await revoke_without_telling(db, tenant_id, key_id)
        clock.now += 1
        with pytest.raises(AuthenticationFailed, match="revoked"):
            await cache.authenticate(db, plaintext, now=utcnow())

    async def test_nothing_is_kept_before_the_app_started(self, db: Database) -> None:
        cache = ApiKeyCache(make_settings(), ListeningChannel())  # never started: hears nobody
        plaintext, key_id, tenant_id = await new_key(db)
        await cache.authenticate(db, plaintext, now=utcnow())
        await revoke_without_telling(db, tenant_id, key_id)
        with pytest.raises(AuthenticationFailed, match="revoked"):
            await cache.authenticate(db, plaintext, now=utcnow())
        assert len(cache.known) == 0

    async def test_expiry_is_checked_on_every_use(self, db: Database) -> None:
        cache = ApiKeyCache(make_settings(), await started(ListeningChannel(), db))
        plaintext, _, _ = await new_key(db, expires_at=utcnow() + timedelta(minutes=5))
        await cache.authenticate(db, plaintext, now=utcnow())
        with pytest.raises(AuthenticationFailed) as caught:
            await cache.authenticate(db, plaintext, now=utcnow() + timedelta(minutes=6))
        assert caught.value.code == "api_key_expired"


class TestBounded:
    async def test_least_recently_used_keys_go_first(self, db: Database) -> None:
        channel = await started(ListeningChannel(), db)
        cache = ApiKeyCache(make_settings(api_key_cache_entries=2), channel, clock=Clock())
        keys = [(await new_key(db))[0] for _ in range(3)]
        for plaintext in (keys[0], keys[1], keys[0], keys[2]):
            await cache.authenticate(db, plaintext, now=utcnow())
        assert len(cache.known) == 2
        counter = StatementCounter(db)
        try:
            await cache.authenticate(db, keys[0], now=utcnow())  # kept: used more recently than keys[1]
            await cache.authenticate(db, keys[1], now=utcnow())  # dropped: looked up again
        finally:
            counter.close()
        assert counter.count == 1

    async def test_made_up_keys_are_refused_from_a_small_cache_of_their_own(self, db: Database) -> None:
        # A clock that stands still: a slow machine must not expire entries mid-test.
        cache = ApiKeyCache(make_settings(), await started(ListeningChannel(), db), clock=Clock())
        plaintext, _, _ = await new_key(db)
        await cache.authenticate(db, plaintext, now=utcnow())
        made_up = [plaintext[:-8] + f"{number:08d}" for number in range(REFUSED_ENTRIES + 10)]
        for guess in made_up:
            with pytest.raises(AuthenticationFailed) as caught:
                await cache.authenticate(db, guess, now=utcnow())
            assert caught.value.code == "invalid_api_key"
        assert (len(cache.known), len(cache.refused)) == (1, REFUSED_ENTRIES)
        counter = StatementCounter(db)
        try:
            with pytest.raises(AuthenticationFailed):
                await cache.authenticate(db, made_up[-1], now=utcnow())  # refused from memory
            await cache.authenticate(db, plaintext, now=utcnow())  # the good key was never pushed out
        finally:
            counter.close()
        assert counter.count == 0


class TestLastUsed:
    async def test_noted_once_a_minute_and_written_in_one_statement_by_the_flush(self, db: Database) -> None:
        cache = ApiKeyCache(make_settings(), await started(ListeningChannel(), db))
        first, first_id, _ = await new_key(db)
        second, second_id, _ = await new_key(db)
        now = utcnow()
        noted = []
        for plaintext, at in ((first, now), (first, now + timedelta(seconds=30)), (second, now)):
            noted.append(cache.use.note(await cache.authenticate(db, plaintext, now=at), at))
        assert noted == [True, False, True]
        counter = StatementCounter(db)
        try:
            await cache.use.flush(db)
        finally:
            counter.close()
        assert counter.count == 1
        async with db.session(write=False) as session:
            written = await session.scalars(
                select(ApiKey.last_used_at).where(ApiKey.id.in_([first_id, second_id]))
            )
            assert all(at is not None for at in written)
