from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from paycore.auth.dependencies import ReadKeyDep, WriteKeyDep
from paycore.dependencies import ReadSessionDep, SettingsDep, WriteSessionDep
from paycore.merchant_webhooks import service
from paycore.merchant_webhooks.models import WebhookAttempt, WebhookEndpoint
from paycore.merchant_webhooks.schemas import AttemptOut, EndpointCreate, EndpointOut, RotateSecretIn
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhook endpoints"])


def endpoint_out(endpoint: WebhookEndpoint, *, new_secret: str | None = None) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        livemode=endpoint.livemode,
        url=endpoint.url,
        description=endpoint.description,
        events=endpoint.events,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created=endpoint.created_at,
        secret=new_secret,
    )


def attempt_out(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut(
        id=attempt.id,
        event_id=attempt.event_id,
        event_type=attempt.event_type,
        succeeded=attempt.succeeded,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
        at=attempt.at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add an endpoint (its secret is shown once)")
async def create_endpoint(
    body: EndpointCreate, context: WriteKeyDep, session: WriteSessionDep, settings: SettingsDep
) -> EndpointOut:
    """A URL paycore sends signed events to (see the `webhooks` section of this document). The answer
    carries the endpoint's `whsec_` signing secret, shown this once. A URL leading to a private or
    loopback address is refused. Needs a secret key with the `write` scope."""
    created = await service.create_endpoint(
        session, context, settings, url=body.url, events=body.events, description=body.description
    )
    return endpoint_out(created.endpoint, new_secret=created.secret)


@router.get("", summary="List endpoints")
async def list_endpoints(
    context: ReadKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[EndpointOut]:
    """The tenant's webhook endpoints in this mode (secrets never shown). Needs a secret key with the
    `read` scope."""
    page = await service.list_endpoints(session, context, limit=limit, cursor=cursor)
    return ListOut(
        data=[endpoint_out(e) for e in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )


@router.get("/{endpoint_id}", summary="Retrieve an endpoint")
async def read_endpoint(endpoint_id: str, context: ReadKeyDep, session: ReadSessionDep) -> EndpointOut:
    """One webhook endpoint (its secret never shown). Needs a secret key with the `read` scope."""
    return endpoint_out(await service.get_endpoint(session, context, endpoint_id))


@router.delete("/{endpoint_id}", summary="Delete an endpoint (no more deliveries to it)")
async def delete_endpoint(endpoint_id: str, context: WriteKeyDep, session: WriteSessionDep) -> EndpointOut:
    """Deletes the endpoint: nothing more is sent to it. Needs a secret key with the `write` scope."""
    return endpoint_out(await service.delete_endpoint(session, context, endpoint_id))


@router.post("/{endpoint_id}/enable", summary="Re-enable an endpoint that was disabled")
async def enable_endpoint(endpoint_id: str, context: WriteKeyDep, session: WriteSessionDep) -> EndpointOut:
    """Turns an endpoint back on after paycore disabled it for failing too long. Needs a secret key
    with the `write` scope."""
    return endpoint_out(await service.enable_endpoint(session, context, endpoint_id))


@router.post("/{endpoint_id}/rotate_secret", summary="New secret; the old one keeps signing for a while")
async def rotate_endpoint_secret(
    endpoint_id: str,
    body: RotateSecretIn,
    context: WriteKeyDep,
    session: WriteSessionDep,
    settings: SettingsDep,
) -> EndpointOut:
    """A new signing secret, shown this once. The old one keeps signing beside it for
    `previous_secret_valid_hours`, so receivers can switch without losing events. Needs a secret key
    with the `write` scope."""
    rotated = await service.rotate_secret(
        session,
        context,
        settings,
        endpoint_id,
        previous_valid=timedelta(hours=body.previous_secret_valid_hours),
    )
    return endpoint_out(rotated.endpoint, new_secret=rotated.secret)


@router.get("/{endpoint_id}/attempts", summary="Delivery attempts to this endpoint, newest first")
async def list_attempts(
    endpoint_id: str,
    context: ReadKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[AttemptOut]:
    """Each delivery to this endpoint: event, status code, latency, error; newest first. Needs a secret
    key with the `read` scope."""
    page = await service.list_attempts(session, context, endpoint_id, limit=limit, cursor=cursor)
    return ListOut(
        data=[attempt_out(a) for a in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )
