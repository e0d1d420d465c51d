"""The platform operator's credential, from `Authorization: Bearer plat_…`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from paycore.audit.service import Actor
from paycore.auth.dependencies import bearer_token
from paycore.auth.keys import parse_api_key
from paycore.auth.schemes import PlatformKeyScheme
from paycore.dependencies import DatabaseDep, client_ip
from paycore.errors import PermissionDenied
from paycore.platform.service import authenticate_platform_key


async def platform_actor(
    request: Request,
    database: DatabaseDep,
    _platform_bearer: PlatformKeyScheme,  # declares the security scheme; the header is read below
) -> Actor:
    presented = bearer_token(request.headers.get("authorization"))
    if parse_api_key(presented) is not None:
        # A tenant's key: known, but not for this (it may be valid; its scope is wrong).
        raise PermissionDenied(
            "This endpoint needs a platform key (plat_…) with the platform scope.", code="insufficient_scope"
        )
    async with database.session(write=False) as session:
        key = await authenticate_platform_key(session, presented)
    return Actor(
        name=f"platform:{key.id}", ip=client_ip(request), user_agent=request.headers.get("user-agent")
    )


PlatformDep = Annotated[Actor, Depends(platform_actor)]
