"""A generic HTTP provisioner: POST a signed JSON description of what was bought to the URL in the
product's fulfillment spec. Signed per Standard Webhooks with `PAYCORE_PROVISIONER_SECRET`; the
fulfillment id is both the `webhook-id` and the `Idempotency-Key`. A 2xx whose JSON body has an
`external_ref` completes the fulfillment; anything else is retried."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import httpx

from paycore.circuit import BreakerKey
from paycore.config import Settings
from paycore.fulfillment.provisioners.base import (
    ProvisionerName,
    ProvisionerUnavailable,
    ProvisionFailed,
    ProvisionRequest,
    ProvisionResult,
)
from paycore.merchant_webhooks.signing import signed_headers
from paycore.merchant_webhooks.targets import TargetRefused, check_target


class HttpProvisioner:
    name: str = ProvisionerName.HTTP
    spends_operator_resources = False  # the merchant's own endpoint

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    def _url(self, request: ProvisionRequest) -> str:
        url = request.config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ProvisionFailed("the product's fulfillment config has no http(s) url")
        return url

    def breaker_keys(self, request: ProvisionRequest) -> tuple[BreakerKey, ...]:
        # The tenant chose the host: no shared breaker, and the host stays out of the target name.
        host = urlsplit(str(request.config.get("url", ""))).hostname
        return (
            BreakerKey.of_tenant(
                "provisioner:http", request.tenant_id, livemode=request.livemode, remote=host
            ),
        )

    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        secret = self._settings.provisioner_secret
        if secret is None:
            raise ProvisionFailed("PAYCORE_PROVISIONER_SECRET is not set; refusing to send unsigned requests")
        url = self._url(request)
        try:
            await check_target(url, self._settings)
        except TargetRefused as exc:
            raise ProvisionFailed(str(exc)) from None
        body = json.dumps(
            {
                "id": request.fulfillment_id,
                "type": "fulfillment.provision",
                "data": {
                    # Who and which world: one secret signs for every tenant, so receivers must
                    # check these, and test-mode orders (free on the sandbox) must not buy anything.
                    "tenant": request.tenant_id,
                    "livemode": request.livemode,
                    "fulfillment": request.fulfillment_id,
                    "order": request.order_id,
                    "order_number": request.order_number,
                    "product": request.product_id,
                    "product_name": request.product_name,
                    "quantity": request.quantity,
                    "customer": {"email": request.customer_email, "name": request.customer_name},
                    "config": {key: value for key, value in request.config.items() if key != "url"},
                },
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "idempotency-key": request.fulfillment_id,
            **signed_headers([secret.get_secret_value()], request.fulfillment_id, int(time.time()), body),
        }
        try:
            response = await self._http.post(url, content=body, headers=headers, follow_redirects=False)
        except TargetRefused as exc:  # the connect-time check (DNS changed since check_target)
            raise ProvisionFailed(str(exc)) from None
        except httpx.HTTPError as exc:
            raise ProvisionerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise ProvisionerUnavailable(f"HTTP {response.status_code}: {response.text[:300]}")
        if not response.is_success:
            raise ProvisionFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        try:
            external_ref = response.json()["external_ref"]
        except (ValueError, KeyError, TypeError):
            raise ProvisionFailed("the provisioner answered 2xx without an external_ref") from None
        return ProvisionResult(result_ref=str(external_ref))
