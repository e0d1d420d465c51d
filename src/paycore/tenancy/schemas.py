from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from paycore.tenancy.models import TenantStatus


class TenantOut(BaseModel):
    id: str
    object: Literal["tenant"] = "tenant"
    slug: str
    name: str
    status: TenantStatus
    livemode: bool
    created: datetime
