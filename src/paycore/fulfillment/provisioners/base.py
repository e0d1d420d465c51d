"""The provisioner interface. Every call carries our fulfillment id as the external id, so a retry
after a timeout finds what the first call made instead of making a second one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from paycore.circuit import BreakerKey


class ProvisionerName(StrEnum):
    """What a product's fulfillment config names in `provisioner` (default: http)."""

    HTTP = "http"  # the merchant's own endpoint
    PTERODACTYL = "pterodactyl"  # the operator's panel


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    fulfillment_id: str
    tenant_id: str
    livemode: bool
    order_id: str
    order_number: str
    product_id: str
    product_name: str
    quantity: int
    customer_email: str
    customer_name: str | None
    config: dict[str, Any]
    # For a provisioner that spends the operator's resources: the spec built from the operator's
    # template and the product's bounded variables — the only thing such a provisioner sends.
    operator_spec: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    result_ref: str


class ProvisionFailed(Exception):
    """The provisioner did not complete (a bad config, a refusal); the worker retries with backoff."""


class ProvisionerUnavailable(ProvisionFailed):
    """The remote system could not be reached or failed (transport error, 5xx): these, and only
    these, count against its circuit breakers — one tenant's bad config must not stop everyone's."""


class Provisioner(Protocol):
    """`provision` must be idempotent on `request.fulfillment_id`.

    `spends_operator_resources`: the call creates something on the operator's systems (its panel),
    not the merchant's. The dispatcher then provisions only from an operator template, within the
    tenant's quota, and only after the provider's API confirmed the payment under the tenant's key.
    """

    name: str
    spends_operator_resources: bool

    def breaker_keys(self, request: ProvisionRequest) -> tuple[BreakerKey, ...]:
        """The circuit breakers this call goes through, outermost first: a shared one only for a
        remote system the operator runs, and always the requesting tenant's own, so a remote one
        tenant chose (and broke) can never refuse another tenant's provisioning."""
        ...

    async def provision(self, request: ProvisionRequest) -> ProvisionResult: ...
