"""What every real provider adapter does the same way: find the account's credentials, verify a
webhook against both modes' secrets, and turn HTTP trouble into the protocol's exceptions."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from paycore.payments.providers.base import (
    CredentialSource,
    ProviderAccount,
    ProviderCredentials,
    ProviderNotConfigured,
    ProviderRequestRefused,
    ProviderThrottled,
    ProviderUnavailable,
    VerifiedWebhook,
    WebhookRejected,
)

# A provider's error text is kept to this length in errors and logs.
ERROR_EXCERPT = 300


class ProviderHttp:
    """One pooled HTTP client for every provider adapter, made on first use (most processes that
    build a registry never call a provider) and closed with the registry. Tests pass a transport
    that routes to local fakes of the providers' APIs."""

    def __init__(self, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None:
        return self._transport

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, transport=self._transport
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def credentials_for(
    source: CredentialSource, account: ProviderAccount, provider: str
) -> ProviderCredentials:
    found = await source.get(account.tenant_id, provider, livemode=account.livemode)
    if found is None:
        mode = "live" if account.livemode else "test"
        raise ProviderNotConfigured(
            f"{provider} is not set up for {mode} mode (PUT /v1/providers/{provider})"
        )
    return found


async def verify_in_either_mode(
    source: CredentialSource,
    account: ProviderAccount,
    provider: str,
    verify: Callable[[ProviderCredentials], Awaitable[dict[str, Any]]],
) -> VerifiedWebhook:
    """Try the live account's webhook secrets, then the test account's; the one that verifies
    says the mode. Fail closed: no account with a webhook secret refuses every webhook."""
    tried = 0
    last: WebhookRejected | None = None
    for livemode in (True, False):
        credentials = await source.get(account.tenant_id, provider, livemode=livemode)
        if credentials is None or not credentials.webhook_secrets:
            continue
        tried += 1
        try:
            return VerifiedWebhook(payload=await verify(credentials), livemode=livemode)
        except WebhookRejected as exc:
            last = exc
    if tried == 0:
        raise WebhookRejected(
            "webhook_secret_missing", f"no {provider} webhook secret is set for this tenant; refusing"
        )
    assert last is not None
    raise last


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """A webhook body as a JSON object; anything else is refused, never a 500 (RecursionError:
    JSON nested deeper than the parser goes). `what` names the object in the refusal."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookRejected("malformed_body", "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("malformed_body", f"the body is not {what}")
    return payload


def raise_for_provider(response: httpx.Response, provider: str) -> None:
    """5xx: the provider's trouble; 429: the account's; a retry may work. Other 4xx: refused for good."""
    if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
        raise ProviderThrottled(f"{provider} answered HTTP 429")
    if response.status_code >= 500:
        raise ProviderUnavailable(f"{provider} answered HTTP {response.status_code}")
    if response.status_code >= 400:
        raise ProviderRequestRefused(
            f"{provider} refused the request (HTTP {response.status_code}): {response.text[:ERROR_EXCERPT]}"
        )


async def send(request: Callable[[], Awaitable[httpx.Response]], provider: str) -> httpx.Response:
    """Make one HTTP call; a transport failure is `ProviderUnavailable`, an error answer is mapped."""
    try:
        response = await request()
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{provider} could not be reached: {type(exc).__name__}") from None
    raise_for_provider(response, provider)
    return response


def json_object(response: httpx.Response, provider: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ProviderUnavailable(f"{provider} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{provider} answered JSON that is not an object")
    return body
