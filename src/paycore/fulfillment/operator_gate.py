"""What must hold before paycore spends the operator's resources (its Pterodactyl panel) for a
tenant. A webhook signed with a secret the tenant chose proves nothing to the operator, so:

1. the server comes only from an operator template the tenant's plan names, with the product's
   variables inside that template's bounds (checked again here: plans and templates change);
2. in live mode, the provider's own status API — asked under the tenant's key — confirms the
   order's payment for its amount and currency; the sandbox (free payments) never counts;
3. the server fits the tenant's quota (servers, memory), reserved under a lock on the tenant row so
   two workers cannot both take the last slot.

`ProvisioningRefused` means a person must look (needs attention, ops alert); `PaymentNotConfirmed`
means ask again later — never go ahead without the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from paycore.db import Database
from paycore.errors import PaycoreError
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.money import Money
from paycore.orders.states import AttemptStatus
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    ProviderAccount,
    ProviderNotConfigured,
    ProviderPaymentState,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from paycore.server_templates.binding import server_memory
from paycore.server_templates.service import bind_product_server
from paycore.tenancy.models import Plan, Subscription, Tenant

if TYPE_CHECKING:
    from paycore.payments.providers.registry import ProviderRegistry

# Fulfillments whose server exists or may still be made: they hold their share of the quota.
_HOLDING = (FulfillmentStatus.PENDING, FulfillmentStatus.RETRYING, FulfillmentStatus.SUCCEEDED)


class ProvisioningRefused(Exception):
    """Not provisioned, and retrying will not change that until someone acts."""


class PaymentNotConfirmed(Exception):
    """The provider has not confirmed the payment (yet), or could not be asked: try again later."""


async def admit_operator_provisioning(
    database: Database, providers: ProviderRegistry, fulfillment: Fulfillment, config: dict[str, Any]
) -> dict[str, Any]:
    """The server spec to send, once every rule above holds; raises otherwise. Test mode stops
    after the template check: its provisioning is a dry run that reaches nothing."""
    async with database.session(write=False) as session:
        try:
            bound = await bind_product_server(session, tenant_id=fulfillment.tenant_id, config=config)
        except PaycoreError as exc:
            raise ProvisioningRefused(f"the product's server is not allowed: {exc.message}") from None
    if fulfillment.livemode:
        await confirm_payment(database, providers, fulfillment)
        await reserve_quota(database, fulfillment, memory=server_memory(bound.spec))
    return bound.spec


async def confirm_payment(database: Database, providers: ProviderRegistry, fulfillment: Fulfillment) -> None:
    async with database.session(write=False) as session:
        row = (
            await session.execute(
                select(PaymentAttempt, Tenant.slug)
                .join(Tenant, Tenant.id == PaymentAttempt.tenant_id)
                .where(
                    PaymentAttempt.tenant_id == fulfillment.tenant_id,
                    PaymentAttempt.order_id == fulfillment.order_id,
                    PaymentAttempt.status == AttemptStatus.SUCCEEDED,
                )
                .order_by(PaymentAttempt.succeeded_at, PaymentAttempt.id)
                .limit(1)
            )
        ).first()
    if row is None:
        raise ProvisioningRefused("the order has no succeeded payment to confirm")
    attempt, tenant_slug = row
    try:
        provider = providers.get(attempt.provider)
    except LookupError:
        raise ProvisioningRefused(
            f"the order was paid through an unknown provider {attempt.provider!r}"
        ) from None
    if not attempt.livemode or not provider.supports_livemode:
        raise ProvisioningRefused(
            f"a {attempt.provider} payment is not live money: it never provisions on the operator's panel"
        )
    if attempt.provider_ref is None:
        raise ProvisioningRefused("the payment has no provider reference to confirm it by")
    account = ProviderAccount(tenant_id=attempt.tenant_id, tenant_slug=tenant_slug, livemode=True)
    try:
        status = await provider.fetch_status(account, attempt.provider_ref)
    except (ProviderUnavailable, TimeoutError, ProviderNotConfigured, ProviderRequestRefused) as exc:
        raise PaymentNotConfirmed(
            f"could not confirm the payment with {attempt.provider}: {type(exc).__name__}: {exc}"
        ) from None
    if status.state in (ProviderPaymentState.FAILED, ProviderPaymentState.CANCELED):
        raise ProvisioningRefused(f"{attempt.provider} says the payment {status.state.value}")
    if status.state is not ProviderPaymentState.SUCCEEDED:
        raise PaymentNotConfirmed(
            f"{attempt.provider} has not confirmed the payment yet ({status.state.value})"
        )
    expected = Money(attempt.amount, attempt.currency)
    if status.amount != expected:
        received = f"{status.amount.amount} {status.amount.currency}" if status.amount else "no amount"
        raise ProvisioningRefused(
            f"{attempt.provider} confirms {received}, not the {expected.amount} {expected.currency} paid"
        )


async def reserve_quota(database: Database, fulfillment: Fulfillment, *, memory: int) -> None:
    """Count this server against the tenant's plan quota, or refuse it. The count leaves this row
    out, so a retry of a server already counted is not counted twice."""
    async with database.session(write=True) as session:
        await session.execute(select(Tenant.id).where(Tenant.id == fulfillment.tenant_id).with_for_update())
        limits = (
            await session.execute(
                select(Plan.max_servers, Plan.max_server_memory_mb)
                .join(Subscription, Subscription.plan_id == Plan.id)
                .where(Subscription.tenant_id == fulfillment.tenant_id)
            )
        ).first()
        max_servers, max_memory = limits if limits is not None else (None, None)
        servers, memory_used = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(Fulfillment.server_memory_mb), 0)).where(
                    Fulfillment.tenant_id == fulfillment.tenant_id,
                    Fulfillment.livemode.is_(True),
                    Fulfillment.server_memory_mb.is_not(None),
                    Fulfillment.status.in_(_HOLDING),
                    Fulfillment.id != fulfillment.id,
                )
            )
        ).one()
        memory_used = int(memory_used or 0)
        if max_servers is not None and servers + 1 > max_servers:
            raise ProvisioningRefused(
                f"over the plan's server quota: {servers} of {max_servers} servers in use"
            )
        if max_memory is not None and memory_used + memory > max_memory:
            raise ProvisioningRefused(
                f"over the plan's memory quota: {memory_used} MB of {max_memory} MB in use, "
                f"this server needs {memory} MB"
            )
        await session.execute(
            update(Fulfillment)
            .where(Fulfillment.id == fulfillment.id)
            .values(server_memory_mb=memory)
            .execution_options(synchronize_session=False)
        )
