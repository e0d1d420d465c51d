from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from paycore.audit.models import AuditEntry
from paycore.auth.models import ApiKey, KeyKind, KeyMode
from paycore.auth.service import (
    authenticate_api_key,
    list_api_keys,
    revoke_api_key,
    touch_api_key,
)
from paycore.clock import utcnow
from paycore.db import Database
from paycore.errors import AuthenticationFailed, NotFound, ValidationFailed
from tests.factories import TEST_ACTOR, make_api_key, make_tenant


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestCreate:
    async def test_only_a_hash_is_stored(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant)
            stored = await session.scalar(select(ApiKey).where(ApiKey.id == created.key.id))
        assert stored is not None
        row_text = " ".join(str(value) for value in vars(stored).values())
        assert created.plaintext not in row_text
        assert created.plaintext[20:] not in row_text  # not even the secret part
        assert stored.prefix == created.plaintext[:20]

    async def test_default_scopes_and_audit_row(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant)
            audit = await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.entity_id == created.key.id, AuditEntry.action == "api_key.created"
                )
            )
        assert created.key.scopes == ["read", "write", "refunds"]
        assert audit is not None
        assert audit.tenant_id == tenant.id
        assert created.plaintext not in str(audit.after)

    async def test_unknown_and_platform_scopes_are_refused(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            with pytest.raises(ValidationFailed, match="unknown scope"):
                await make_api_key(session, tenant=tenant, scopes=["read", "root"])
            with pytest.raises(ValidationFailed, match="unknown scope"):
                await make_api_key(session, tenant=tenant, scopes=["platform"])
            with pytest.raises(ValidationFailed, match="publishable keys carry no scopes"):
                await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE, scopes=["read"])

    async def test_expiry_in_the_past_is_refused(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            with pytest.raises(ValidationFailed):
                await make_api_key(session, tenant=tenant, expires_at=utcnow() - timedelta(seconds=1))


class TestVerify:
    async def test_a_valid_key_finds_its_tenant(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
            found = await authenticate_api_key(session, created.plaintext)
        assert found.tenant.id == tenant.id
        assert found.key.livemode is True

    async def test_a_key_with_a_known_prefix_but_wrong_secret_is_refused(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant)
            forged = created.key.prefix + "A" * 32
            with pytest.raises(AuthenticationFailed) as caught:
                await authenticate_api_key(session, forged)
        assert caught.value.code == "invalid_api_key"

    async def test_revoked_key_is_refused_and_revoking_twice_is_a_no_op(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant)
            _, first = await revoke_api_key(
                session, tenant_id=tenant.id, key_id=created.key.id, actor=TEST_ACTOR
            )
            _, second = await revoke_api_key(
                session, tenant_id=tenant.id, key_id=created.key.id, actor=TEST_ACTOR
            )
            with pytest.raises(AuthenticationFailed) as caught:
                await authenticate_api_key(session, created.plaintext)
        assert (first, second) == (True, False)
        assert caught.value.code == "api_key_revoked"

    async def test_expired_key_is_refused(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant, expires_at=utcnow() + timedelta(hours=1))
            await authenticate_api_key(session, created.plaintext)  # still valid now
            with pytest.raises(AuthenticationFailed) as caught:
                await authenticate_api_key(session, created.plaintext, now=utcnow() + timedelta(hours=2))
        assert caught.value.code == "api_key_expired"

    async def test_another_tenant_cannot_revoke_a_key(self, db: Database) -> None:
        async with db.session() as session:
            owner, stranger = await make_tenant(session), await make_tenant(session)
            created = await make_api_key(session, tenant=owner)
            with pytest.raises(NotFound):
                await revoke_api_key(session, tenant_id=stranger.id, key_id=created.key.id, actor=TEST_ACTOR)
            assert [key.id for key in await list_api_keys(session, tenant_id=stranger.id)] == []

    async def test_last_used_is_written_at_most_once_a_minute(self, db: Database) -> None:
        now = utcnow()
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant)
            writes = [
                await touch_api_key(session, key_id=created.key.id, now=now),
                await touch_api_key(session, key_id=created.key.id, now=now + timedelta(seconds=30)),
                await touch_api_key(session, key_id=created.key.id, now=now + timedelta(seconds=61)),
            ]
        assert writes == [True, False, True]


class TestOverHttp:
    async def test_secret_key_reads_its_tenant(self, db: Database, client: httpx.AsyncClient) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session, slug="acme-http", name="Acme HTTP")
            created = await make_api_key(session, tenant=tenant)
        response = await client.get("/v1/tenant", headers=bearer(created.plaintext))
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == tenant.id
        assert body["slug"] == "acme-http"
        assert body["object"] == "tenant"
        assert body["livemode"] is False
        assert body["created"].endswith("Z")
        async with db.session(write=False) as session:
            key = await session.get(ApiKey, created.key.id, populate_existing=True)
        assert key is not None
        assert key.last_used_at is not None

    @pytest.mark.parametrize(
        ("headers", "code"),
        [
            ({}, "missing_api_key"),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_authorization_header"),
            ({"Authorization": "Bearer "}, "invalid_authorization_header"),
            ({"Authorization": "Bearer sk_test_short"}, "invalid_api_key"),
        ],
    )
    async def test_missing_or_malformed_credentials_are_401(
        self, client: httpx.AsyncClient, headers: dict[str, str], code: str
    ) -> None:
        response = await client.get("/v1/tenant", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.json()["error"]["code"] == code

    async def test_revoked_and_expired_keys_are_401(self, db: Database, client: httpx.AsyncClient) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            revoked = await make_api_key(session, tenant=tenant)
            await revoke_api_key(session, tenant_id=tenant.id, key_id=revoked.key.id, actor=TEST_ACTOR)
            expiring = await make_api_key(session, tenant=tenant, expires_at=utcnow() + timedelta(hours=1))
            expiring.key.expires_at = utcnow() - timedelta(seconds=1)
        assert (await client.get("/v1/tenant", headers=bearer(revoked.plaintext))).json()["error"][
            "code"
        ] == ("api_key_revoked")
        response = await client.get("/v1/tenant", headers=bearer(expiring.plaintext))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "api_key_expired"

    async def test_publishable_key_may_not_use_the_merchant_api(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE)
        response = await client.get("/v1/tenant", headers=bearer(created.plaintext))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "secret_key_required"

    async def test_live_key_reports_livemode(self, db: Database, client: httpx.AsyncClient) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        assert (await client.get("/v1/tenant", headers=bearer(created.plaintext))).json()["livemode"] is True
