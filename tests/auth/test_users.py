from __future__ import annotations

import pytest
from sqlalchemy import func, select

from paycore.auth.models import User, UserRole
from paycore.auth.passwords import verify_password
from paycore.auth.service import create_owner
from paycore.db import Database
from paycore.errors import ValidationFailed
from tests.factories import TEST_ACTOR, make_tenant


class TestCreateOwner:
    async def test_owner_is_created_once_with_an_argon2_hash(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            user, created = await create_owner(
                session,
                tenant=tenant,
                email="Owner@Shop.Test",
                password="violet-orbit-tundra-42",
                actor=TEST_ACTOR,
            )
            again, created_again = await create_owner(
                session,
                tenant=tenant,
                email="owner@shop.test",
                password="another-long-passw0rd",
                actor=TEST_ACTOR,
            )
            count = await session.scalar(
                select(func.count()).select_from(User).where(User.tenant_id == tenant.id)
            )
        assert (created, created_again) == (True, False)
        assert again.id == user.id
        assert count == 1
        assert user.email == "owner@shop.test"
        assert user.role is UserRole.OWNER
        assert verify_password(user.password_hash, "violet-orbit-tundra-42")
        assert not verify_password(user.password_hash, "another-long-passw0rd")

    @pytest.mark.parametrize("password", ["short-pw", "password1234", "aaaaaaaaaaaaaaaa"])
    async def test_weak_passwords_are_refused(self, db: Database, password: str) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session)
            with pytest.raises(ValidationFailed) as caught:
                await create_owner(
                    session, tenant=tenant, email="o@shop.test", password=password, actor=TEST_ACTOR
                )
        assert caught.value.param == "password"
