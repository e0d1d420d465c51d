"""The Idempotency-Key's claim, run by every route's key check as its last step.

So a saved answer is replayed only to a caller that passed the route's own authentication, key
kind, scope and standing checks — a publishable or read-only key replaying a merchant's key gets
the route's 401/403, never the saved body — and only to the API key that made the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from paycore.auth.context import TenantContext
from paycore.db import Database
from paycore.idempotency.service import KeyRef, SavedResponse, claim_key
from paycore.sealing import secrets_box
from paycore.secrets_box import SecretsBox

# Where the middleware leaves the request's key for the route's key check to claim.
PENDING_SCOPE_KEY = "paycore.idempotency"
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(slots=True)
class PendingKey:
    """An Idempotency-Key the middleware saw; `claimed` once a route's key check claimed it."""

    key: str
    fingerprint: str
    claimed: KeyRef | None = None
    box: SecretsBox | None = None


class ReplaySaved(Exception):
    """Not an error: the saved answer to give instead of running the route."""

    def __init__(self, saved: SavedResponse) -> None:
        super().__init__("replay a saved answer")
        self.saved = saved


async def replay_or_claim(request: Request, context: TenantContext) -> None:
    """Claim the request's Idempotency-Key for the caller's API key, or raise `ReplaySaved`."""
    pending = request.scope.get(PENDING_SCOPE_KEY)
    if not isinstance(pending, PendingKey) or pending.claimed is not None:
        return
    # The keyring first: a key that cannot seal the answer refuses before anything runs.
    box = secrets_box(request.app.state.settings)
    ref = KeyRef(
        tenant_id=context.tenant_id, livemode=context.livemode, api_key_id=context.key_id, key=pending.key
    )
    database: Database = request.app.state.database
    # The claim is one INSERT (and, on a conflict, one SELECT of a row that is then settled or in
    # flight): it needs no transaction of its own.
    async with database.single_statement() as session:
        saved = await claim_key(
            session,
            box,
            ref,
            method=request.scope["method"],
            path=request.scope["path"],
            fingerprint=pending.fingerprint,
        )
    if saved is not None:
        raise ReplaySaved(saved)
    pending.claimed = ref
    pending.box = box


async def replay_saved_answer(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReplaySaved)
    return Response(
        content=exc.saved.body,
        status_code=exc.saved.status,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )
