"""An API process keeps a tenant's opened provider credentials, and forgets them the moment the
tenant changes them (the change publishes after its commit)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database
from paycore.provider_credentials.service import CredentialStore
from tests.flows.helpers import Shop, open_shop
from tests.provider_credentials.test_credentials_api import SECRET, registry_with_acme


class TestCredentialCache:
    async def test_read_once_then_dropped_on_every_change(self, db: Database, settings: Settings) -> None:
        shop = await open_shop(db)
        # Trusted a minute even before (or without) a listener: a loaded machine must not turn
        # "served from memory" into a re-read; dropping on a change is what is under test.
        settings = settings.model_copy(update={"cache_unconfirmed_seconds": 60.0})
        app = create_app(settings, database=db)
        app.state.providers = registry_with_acme(settings, db)
        await app.state.invalidations.start(db)  # what the lifespan does
        try:
            await self.check(app, db, settings, shop)
        finally:
            await app.state.invalidations.stop()

    async def check(self, app: Any, db: Database, settings: Settings, shop: Shop) -> None:
        store = CredentialStore(db, settings, cache=app.state.credential_cache)
        reads: list[str] = []

        def seen(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "provider_credentials" in statement:
                reads.append(statement)

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:

            async def put(account: str) -> None:
                body = {"credentials": {"account": account, "api_key": SECRET}}
                response = await api.put("/v1/providers/acme", json=body, headers=shop.secret)
                assert response.status_code == 200, response.text

            async def account() -> str | None:
                found = await store.get(shop.tenant_id, "acme", livemode=False)
                return found.values["account"] if found is not None else None

            assert await account() is None  # "none set" is kept too
            await put("acct_1")
            assert await account() == "acct_1"
            event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
            try:
                assert await account() == "acct_1"
            finally:
                event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
            assert reads == []  # served from memory

            await put("acct_2")
            assert await account() == "acct_2"
            deleted = await api.delete("/v1/providers/acme", headers=shop.secret)
            assert deleted.status_code == 204
            assert await account() is None
