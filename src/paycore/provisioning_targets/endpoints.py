from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from paycore.auth.dependencies import ReadKeyDep, WriteKeyDep
from paycore.dependencies import ReadSessionDep, SettingsDep, WriteSessionDep
from paycore.merchant_webhooks.schemas import RotateSecretIn
from paycore.provisioning_targets import service
from paycore.provisioning_targets.models import ProvisioningTarget
from paycore.provisioning_targets.schemas import TargetCreate, TargetOut
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut

router = APIRouter(prefix="/v1/provisioning_targets", tags=["provisioning targets"])


def target_out(target: ProvisioningTarget, *, secret: str | None = None) -> TargetOut:
    return TargetOut(
        id=target.id,
        livemode=target.livemode,
        url=target.url,
        description=target.description,
        previous_secret_expires_at=target.previous_secret_expires_at,
        created=target.created_at,
        secret=secret,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a target (its secret is shown once)")
async def create_target(
    body: TargetCreate, context: WriteKeyDep, session: WriteSessionDep, settings: SettingsDep
) -> TargetOut:
    """An HTTP endpoint of the merchant's that paycore calls to provision what a paid order bought.
    The answer carries the target's signing secret, shown this once. Needs a secret key with the
    `write` scope."""
    issued = await service.create_target(
        session, context, settings, url=body.url, description=body.description
    )
    return target_out(issued.target, secret=issued.secret)


@router.get("", summary="List provisioning targets")
async def list_targets(
    context: ReadKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[TargetOut]:
    """The tenant's provisioning targets in this mode (secrets never shown). Needs a secret key with
    the `read` scope."""
    page = await service.list_targets(session, context, limit=limit, cursor=cursor)
    return ListOut(
        data=[target_out(t) for t in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )


@router.get("/{target_id}", summary="Retrieve a provisioning target")
async def read_target(target_id: str, context: ReadKeyDep, session: ReadSessionDep) -> TargetOut:
    """One provisioning target (its secret never shown). Needs a secret key with the `read` scope."""
    return target_out(await service.get_target(session, context, target_id))


@router.delete("/{target_id}", summary="Delete a provisioning target (no more calls to it)")
async def delete_target(target_id: str, context: WriteKeyDep, session: WriteSessionDep) -> TargetOut:
    """Deletes the target: no more calls go to it. Needs a secret key with the `write` scope."""
    return target_out(await service.delete_target(session, context, target_id))


@router.post("/{target_id}/rotate_secret", summary="New secret; the old one keeps signing for a while")
async def rotate_target_secret(
    target_id: str,
    body: RotateSecretIn,
    context: WriteKeyDep,
    session: WriteSessionDep,
    settings: SettingsDep,
) -> TargetOut:
    """A new signing secret, shown this once; the old one keeps signing beside it for a while. Needs a
    secret key with the `write` scope."""
    issued = await service.rotate_secret(
        session,
        context,
        settings,
        target_id,
        previous_valid=timedelta(hours=body.previous_secret_valid_hours),
    )
    return target_out(issued.target, secret=issued.secret)
