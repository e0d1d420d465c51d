"""Game servers on a Pterodactyl panel, through its Application API.

The server is created with `external_id` = our fulfillment id. Before creating, the adapter looks
the server up by that external id (`GET /api/application/servers/external/{id}`): if a first
attempt created it and then timed out, the retry finds it instead of creating a second server.

The panel is the operator's, reached with the operator's key: what it receives is only the spec
the dispatcher built from an operator-defined server template and the product's bounded variables
(`request.operator_spec`, see `paycore.server_templates`) — never a tenant's own server config.
The creation fields are `user`, `egg`, `docker_image`, `startup`, `environment`, `limits`,
`feature_limits`, and `allocation` or `deploy`; paycore adds `name` and `external_id`.

What the panel answers is recorded as its status only (a fulfillment's `last_error` reaches the
tenant in `fulfillment.failed`); its body goes to the operator's log, redacted.
"""

from __future__ import annotations

from typing import Any

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
from paycore.logging import get_logger, redact_text

log = get_logger(__name__)

_REQUIRED = ("user", "egg", "docker_image", "startup", "limits", "feature_limits")
# Only these creation fields pass to the operator's panel (a second fence behind the template's schema).
_ALLOWED = frozenset(
    {
        *_REQUIRED,
        "name",
        "description",
        "environment",
        "allocation",
        "deploy",
        "skip_scripts",
        "oom_disabled",
        "start_on_completion",
    }
)


TARGET = "provisioner:pterodactyl"


class PterodactylProvisioner:
    name: str = ProvisionerName.PTERODACTYL
    spends_operator_resources = True

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    def breaker_keys(self, request: ProvisionRequest) -> tuple[BreakerKey, ...]:
        # The operator's one panel: shared, and each tenant's own within it.
        return (
            BreakerKey.shared(TARGET),
            BreakerKey.of_tenant(TARGET, request.tenant_id, livemode=request.livemode),
        )

    def _headers(self) -> dict[str, str]:
        if self._settings.pterodactyl_api_key is None:
            raise ProvisionFailed("PAYCORE_PTERODACTYL_API_KEY is not set")
        return {
            "Authorization": f"Bearer {self._settings.pterodactyl_api_key.get_secret_value()}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _api(self, path: str) -> str:
        if self._settings.pterodactyl_url is None:
            raise ProvisionFailed("PAYCORE_PTERODACTYL_URL is not set")
        return f"{self._settings.pterodactyl_url}/api/application{path}"

    def creation_body(self, request: ProvisionRequest) -> dict[str, Any]:
        server = request.operator_spec
        if server is None:
            raise ProvisionFailed(
                "no server template spec: a server is made only from an operator's template"
            )
        unknown = sorted(set(server) - _ALLOWED)
        if unknown:
            raise ProvisionFailed(
                f"the server spec has fields the panel must not be sent: {', '.join(unknown)}"
            )
        missing = [field for field in _REQUIRED if field not in server]
        if "allocation" not in server and "deploy" not in server:
            missing.append("allocation or deploy")
        if missing:
            raise ProvisionFailed(f"the server spec lacks {', '.join(missing)}")
        return {
            "environment": {},
            "start_on_completion": True,
            **server,
            "name": f"{request.product_name} {request.order_number}"[:191],
            "external_id": request.fulfillment_id,
        }

    async def _existing(self, external_id: str) -> str | None:
        response = await self._http.get(
            self._api(f"/servers/external/{external_id}"), headers=self._headers()
        )
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ProvisionFailed(f"looking the server up: {_refused(response)}")
        return _server_id(response)

    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        if not request.livemode:
            # Test-mode orders are paid for free on the sandbox page: they must not create real
            # servers on the operator's panel. The fulfillment completes as a dry run.
            self.creation_body(request)  # still refuse a config that would fail in live mode
            return ProvisionResult(result_ref="test-mode:not-created")
        body = self.creation_body(request)
        try:
            existing = await self._existing(request.fulfillment_id)
            if existing is not None:
                return ProvisionResult(result_ref=existing)
            response = await self._http.post(self._api("/servers"), json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise ProvisionerUnavailable(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise ProvisionerUnavailable(f"creating the server: {_refused(response)}")
        if not response.is_success:
            raise ProvisionFailed(f"creating the server: {_refused(response)}")
        return ProvisionResult(result_ref=_server_id(response))


def _refused(response: httpx.Response) -> str:
    log.warning(
        "pterodactyl_refused",
        path=response.request.url.path,
        status=response.status_code,
        body=redact_text(response.text[:300]),
    )
    return f"HTTP {response.status_code}"


def _server_id(response: httpx.Response) -> str:
    try:
        return str(response.json()["attributes"]["id"])
    except (ValueError, KeyError, TypeError):
        _refused(response)
        raise ProvisionFailed("the panel answered without a server id") from None
