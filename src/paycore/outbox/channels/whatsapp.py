"""WhatsApp through the WhatsApp Cloud API: `POST /{phone-number-id}/messages` with an approved
template (free-form text is only allowed inside a customer-initiated 24-hour window)."""

from __future__ import annotations

from typing import Any

import httpx

from paycore.config import Settings
from paycore.money import Money
from paycore.outbox.channels.base import DeliveryOutcome, retry_after_seconds
from paycore.outbox.models import OutboxChannel, OutboxMessage


def template_message(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    order = payload["order"]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": payload["to"],
        "type": "template",
        "template": {
            "name": settings.whatsapp_template,
            "language": {"code": settings.whatsapp_language},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": order["number"]},
                        {"type": "text", "text": Money(order["total"], order["currency"]).format()},
                    ],
                }
            ],
        },
    }


TEST_MODE_WITHHELD = "test mode: WhatsApp messages are sent for live orders only"


class WhatsAppChannel:
    channel = OutboxChannel.WHATSAPP

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
        settings = self._settings
        if not message.livemode:
            # A publishable key is public and a test payment free: sending would let anyone have
            # the operator's WhatsApp number message a stranger. Written, never sent.
            return DeliveryOutcome.withheld(TEST_MODE_WITHHELD)
        if settings.whatsapp_token is None or settings.whatsapp_phone_number_id is None:
            return DeliveryOutcome.failed("WhatsApp is not configured", permanent=True)
        url = f"{settings.whatsapp_api_url}/{settings.whatsapp_phone_number_id}/messages"
        try:
            response = await self._http.post(
                url,
                json=template_message(settings, message.payload),
                headers={"Authorization": f"Bearer {settings.whatsapp_token.get_secret_value()}"},
            )
        except httpx.HTTPError as exc:
            return DeliveryOutcome.failed(type(exc).__name__)
        if response.is_success:
            # Accepted: whatever the body says, sending again would message the customer twice.
            try:
                message_id = str(response.json()["messages"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError):
                message_id = "accepted"
            return DeliveryOutcome.delivered(message_id)
        # The status and Meta's numeric error code (documented, fixed), never the body's text.
        detail = f"HTTP {response.status_code}" + _graph_error_code(response)
        # 429 and 5xx are worth another try; any other 4xx (a bad number, a template not approved)
        # will fail the same way every time.
        retryable = response.status_code == 429 or response.status_code >= 500
        return DeliveryOutcome.failed(
            detail,
            permanent=not retryable,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )


def _graph_error_code(response: httpx.Response) -> str:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""
    return f" (Graph API error {code})" if isinstance(code, int) else ""
