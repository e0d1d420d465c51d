from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from paycore.schemas import StrictInput


class TargetCreate(StrictInput):
    url: str = Field(min_length=8, max_length=2000)
    description: str | None = Field(default=None, max_length=500)


class TargetOut(BaseModel):
    id: str
    object: Literal["provisioning_target"] = "provisioning_target"
    livemode: bool
    url: str
    description: str | None
    previous_secret_expires_at: datetime | None
    created: datetime
    secret: str | None = Field(default=None, description="Shown only when created or rotated.")
