from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.config import Settings
from paycore.db import Database
from tests.providers.midtrans.fake import FakeMidtrans
from tests.providers.midtrans.steps import Paycore
from tests.providers.support import api_client


@pytest.fixture
def fake() -> FakeMidtrans:
    return FakeMidtrans()


@pytest.fixture
async def paycore(db: Database, settings: Settings, fake: FakeMidtrans) -> AsyncIterator[Paycore]:
    """paycore's HTTP API with its Midtrans adapter talking to the fake."""
    async with api_client(db, settings, fake.transport()) as (client, registry):
        yield Paycore(db=db, settings=settings, client=client, registry=registry, fake=fake)
