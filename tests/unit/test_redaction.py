from __future__ import annotations

import io
import json

import pytest

from paycore.logging import REDACTED, configure_logging, get_logger, redact

SECRET_KEY = "sk_live_AbCdEfGhIjKl0123456789abcdefghijklMNOPQRSTUV"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class TestRedactByKeyName:
    @pytest.mark.parametrize(
        "key",
        [
            "authorization",
            "Cookie",
            "password",
            "client_secret",
            "receipt_token",
            "api_key",
            "Stripe-Signature",
        ],
    )
    def test_secret_names_are_redacted(self, key: str) -> None:
        assert redact({key: "anything at all"}) == {key: REDACTED}

    def test_nested_values_are_redacted(self) -> None:
        event = {"request": {"headers": {"authorization": "Basic x"}, "items": [{"password": "p"}]}}
        assert redact(event) == {
            "request": {"headers": {"authorization": REDACTED}, "items": [{"password": REDACTED}]}
        }

    def test_ordinary_names_are_kept(self) -> None:
        assert redact({"amount": 1200, "currency": "EUR", "ok": True}) == {
            "amount": 1200,
            "currency": "EUR",
            "ok": True,
        }


class TestRedactByValueShape:
    def test_our_key_and_webhook_secret_formats(self) -> None:
        text = f"tried {SECRET_KEY} and {WEBHOOK_SECRET} then rk_test_abc123"
        assert redact(text) == f"tried {REDACTED} and {REDACTED} then {REDACTED}"

    def test_bearer_credentials_and_url_passwords(self) -> None:
        assert redact("Bearer abc.def.ghi") == REDACTED
        assert redact("postgresql://paycore:hunter2@db/pay") == f"postgresql://{REDACTED}@db/pay"

    def test_publishable_keys_and_plain_text_are_kept(self) -> None:
        assert redact("pk_test_visible and a plain sentence") == "pk_test_visible and a plain sentence"

    def test_bytes_and_tuples(self) -> None:
        assert redact((SECRET_KEY.encode(), 3)) == [REDACTED, 3]


def test_secrets_in_exceptions_never_reach_the_output() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", json=True, stream=stream)
    log = get_logger("test")
    try:
        raise ValueError(f"provider refused {SECRET_KEY}")
    except ValueError:
        log.exception("call_failed", detail={"authorization": f"Bearer {SECRET_KEY}"}, note=WEBHOOK_SECRET)
    output = stream.getvalue()
    assert SECRET_KEY not in output and WEBHOOK_SECRET not in output
    line = json.loads(output.strip().splitlines()[-1])
    assert line["event"] == "call_failed"
    assert REDACTED in line["exception"]
    assert line["detail"] == {"authorization": REDACTED}


def test_stdlib_loggers_are_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", json=True, stream=stream)
    import logging

    logging.getLogger("uvicorn.error").info("connecting with %s", SECRET_KEY)
    line = json.loads(stream.getvalue().strip())
    assert line["event"] == f"connecting with {REDACTED}"
