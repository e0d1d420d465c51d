"""How provider answers map to the protocol's exceptions, and so to the breakers they count
against: a 429 (and Stripe's 409) is one account's trouble (`ProviderThrottled`, the tenant's
breaker only); a 5xx or no answer is the provider's (`ProviderUnavailable`, shared too)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import stripe

from paycore.payments.providers.base import ProviderRequestRefused, ProviderThrottled, ProviderUnavailable
from paycore.payments.providers.common import raise_for_provider
from paycore.payments.providers.paypal_api import raise_for_paypal
from paycore.payments.providers.stripe_sdk import mapped_error


def answer(status: int) -> httpx.Response:
    return httpx.Response(status, json={"error": {"description": "x"}})


class TestHttpAnswers:
    @pytest.mark.parametrize("check", [lambda r: raise_for_provider(r, "razorpay"), raise_for_paypal])
    def test_a_429_is_the_accounts_trouble(self, check: Callable[[httpx.Response], None]) -> None:
        with pytest.raises(ProviderThrottled):
            check(answer(429))

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    @pytest.mark.parametrize("check", [lambda r: raise_for_provider(r, "razorpay"), raise_for_paypal])
    def test_a_5xx_is_the_providers_trouble(
        self, check: Callable[[httpx.Response], None], status: int
    ) -> None:
        with pytest.raises(ProviderUnavailable) as raised:
            check(answer(status))
        assert not isinstance(raised.value, ProviderThrottled)

    @pytest.mark.parametrize("check", [lambda r: raise_for_provider(r, "razorpay"), raise_for_paypal])
    def test_other_4xx_are_refusals(self, check: Callable[[httpx.Response], None]) -> None:
        with pytest.raises(ProviderRequestRefused):
            check(answer(401))


class TestStripeErrors:
    @pytest.mark.parametrize("status", [409, 429])
    def test_throttled(self, status: int) -> None:
        assert isinstance(
            mapped_error(stripe.RateLimitError("slow down", http_status=status)), ProviderThrottled
        )

    def test_server_error_and_no_answer_are_unavailable(self) -> None:
        for error in (stripe.APIError("boom", http_status=500), stripe.APIConnectionError("no route")):
            mapped = mapped_error(error)
            assert isinstance(mapped, ProviderUnavailable)
            assert not isinstance(mapped, ProviderThrottled)
