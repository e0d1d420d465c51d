"""The providers paycore knows, by name. An explicit dict: no import strings, no plug-in magic."""

from __future__ import annotations

import httpx

from paycore.circuit import Breakers
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import InvalidRequest, NotFound
from paycore.payments.providers.base import CredentialSource, PaymentProvider
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.guarded import GuardedProvider
from paycore.payments.providers.midtrans import MidtransProvider
from paycore.payments.providers.paypal import PayPalProvider
from paycore.payments.providers.razorpay import RazorpayProvider
from paycore.payments.providers.sandbox import SandboxProvider
from paycore.payments.providers.stripe import StripeProvider
from paycore.provider_credentials.service import CredentialStore

DEFAULT_PROVIDER = "sandbox"


class ProviderRegistry:
    def __init__(self, providers: dict[str, PaymentProvider], *, http: ProviderHttp | None = None) -> None:
        self._providers = providers
        self._http = http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def names(self) -> list[str]:
        return sorted(self._providers)

    def for_checkout(self, name: str, *, livemode: bool) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is None:
            raise InvalidRequest(
                f"Unknown provider '{name}'; choose one of {', '.join(self.names)}.",
                code="unknown_provider",
                param="provider",
            )
        if livemode and not provider.supports_livemode:
            raise InvalidRequest(
                f"The {name} provider takes test-mode payments only.",
                code="provider_test_mode_only",
                param="provider",
            )
        return provider

    def for_webhook(self, name: str) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is None:
            raise NotFound(f"No provider '{name}'.", code="unknown_provider")
        return provider

    def get(self, name: str) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is None:
            raise LookupError(f"provider {name!r} is not configured")
        return provider


def build_registry(
    settings: Settings,
    database: Database,
    breakers: Breakers | None = None,
    *,
    credentials: CredentialSource | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> ProviderRegistry:
    """Every provider, each behind its breakers. `http_transport` (tests) routes their HTTP calls."""
    breakers = breakers or breakers_for(settings)
    credentials = credentials or CredentialStore(database, settings)
    http = ProviderHttp(timeout=settings.provider_timeout_seconds, transport=http_transport)
    providers: list[PaymentProvider] = [
        SandboxProvider(settings, database),
        StripeProvider(settings, credentials, http),
        RazorpayProvider(settings, credentials, http),
        PayPalProvider(settings, credentials, http),
        MidtransProvider(settings, credentials, http),
    ]
    return ProviderRegistry(
        {
            provider.name: GuardedProvider(
                provider, breakers, timeout_seconds=settings.provider_timeout_seconds
            )
            for provider in providers
        },
        http=http,
    )


def breakers_for(settings: Settings) -> Breakers:
    return Breakers(
        failure_threshold=settings.circuit_failure_threshold, reset_seconds=settings.circuit_reset_seconds
    )
