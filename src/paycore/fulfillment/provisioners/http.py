"""A generic HTTP provisioner: POST a signed JSON description of what was bought to the tenant's
provisioning target that the product's fulfillment config names (`config.target`).

Each target has its own secret (see `paycore.provisioning_targets`), looked up under the
fulfillment's own tenant and mode: a product naming another tenant's target finds nothing, and no
secret ever signs a call for a tenant other than its owner. Signed per Standard Webhooks; the
fulfillment id is both the `webhook-id` and the `Idempotency-Key`. A 2xx whose JSON body has an
`external_ref` completes the fulfillment; anything else is retried. Only the status of an answer
is recorded, never its body: the URL is the tenant's choice.
"""

from __future__ import annotations

import json
import time

import httpx

from paycore.circuit import BreakerKey
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.fulfillment.provisioners.base import (
    ProvisionerName,
    ProvisionerUnavailable,
    ProvisionFailed,
    ProvisionRequest,
    ProvisionResult,
)
from paycore.merchant_webhooks.signing import signed_headers
from paycore.merchant_webhooks.targets import TargetRefused, check_target
from paycore.provisioning_targets.service import SigningTarget, signing_target
from paycore.sealing import SecretsKeyMissing
from paycore.secrets_box import SealError

# Config keys that say where to send, not what was bought: the receiver is not told them.
_ROUTING_KEYS = frozenset({"target", "url"})


class HttpProvisioner:
    name: str = ProvisionerName.HTTP
    spends_operator_resources = False  # the merchant's own endpoint

    def __init__(self, settings: Settings, database: Database, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._database = database
        self._http = http

    @staticmethod
    def _target_id(request: ProvisionRequest) -> str:
        target_id = request.config.get("target")
        if not isinstance(target_id, str) or not target_id:
            raise ProvisionFailed(
                "the product's fulfillment config names no provisioning target (config.target)"
            )
        return target_id

    def breaker_keys(self, request: ProvisionRequest) -> tuple[BreakerKey, ...]:
        # The tenant chose the endpoint: its own breaker only (never a shared one), named by our
        # target id, not the tenant's host name.
        return (
            BreakerKey.of_tenant(
                "provisioner:http",
                request.tenant_id,
                livemode=request.livemode,
                remote=str(request.config.get("target", "")),
            ),
        )

    async def _signing_target(self, request: ProvisionRequest) -> SigningTarget:
        target_id = self._target_id(request)
        try:
            async with self._database.session(write=False) as session:
                found = await signing_target(
                    session,
                    self._settings,
                    tenant_id=request.tenant_id,
                    livemode=request.livemode,
                    target_id=target_id,
                    now=utcnow(),
                )
        except (SealError, SecretsKeyMissing):
            raise ProvisionFailed(
                f"the secret of provisioning target {target_id} cannot be opened (PAYCORE_SECRETS_KEY)"
            ) from None
        if found is None:
            raise ProvisionFailed(f"no provisioning target {target_id} (deleted, or not this tenant's)")
        return found

    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        destination = await self._signing_target(request)
        try:
            await check_target(destination.url, self._settings)
        except TargetRefused as exc:
            raise ProvisionFailed(str(exc)) from None
        body = json.dumps(
            {
                "id": request.fulfillment_id,
                "type": "fulfillment.provision",
                "data": {
                    # Which world: test-mode orders (free on the sandbox) must not buy anything.
                    "tenant": request.tenant_id,
                    "livemode": request.livemode,
                    "fulfillment": request.fulfillment_id,
                    "order": request.order_id,
                    "order_number": request.order_number,
                    "product": request.product_id,
                    "product_name": request.product_name,
                    "quantity": request.quantity,
                    "customer": {"email": request.customer_email, "name": request.customer_name},
                    "config": {
                        key: value for key, value in request.config.items() if key not in _ROUTING_KEYS
                    },
                },
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "idempotency-key": request.fulfillment_id,
            **signed_headers(destination.secrets, request.fulfillment_id, int(time.time()), body),
        }
        try:
            response = await self._http.post(
                destination.url, content=body, headers=headers, follow_redirects=False
            )
        except TargetRefused as exc:  # the connect-time check (DNS changed since check_target)
            raise ProvisionFailed(str(exc)) from None
        except httpx.HTTPError as exc:
            raise ProvisionerUnavailable(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise ProvisionerUnavailable(f"HTTP {response.status_code}")
        if not response.is_success:
            raise ProvisionFailed(f"HTTP {response.status_code}")
        try:
            external_ref = response.json()["external_ref"]
        except (ValueError, KeyError, TypeError):
            raise ProvisionFailed("the provisioner answered 2xx without an external_ref") from None
        return ProvisionResult(result_ref=str(external_ref)[:200])
