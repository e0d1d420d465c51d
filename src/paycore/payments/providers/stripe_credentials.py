"""What `PUT /v1/providers/stripe` takes: the account's API keys, checked against the mode.

A test-mode paycore key sets test credentials, so Stripe's keys must be test keys (`sk_test_…` or
a restricted `rk_test_…`, and `pk_test_…`); live likewise. Mixing them would move real money from
a test checkout, or take none from a live one. Messages name the rule, never the value.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

_BODY = r"[A-Za-z0-9_]{8,240}"


def _mode(info: ValidationInfo) -> str:
    livemode = info.context.get("livemode") if isinstance(info.context, dict) else None
    if not isinstance(livemode, bool):
        raise ValueError("the mode (test or live) of these keys is not known")  # fail closed
    return "live" if livemode else "test"


class StripeCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    secret_key: SecretStr = Field(description="A secret (`sk_…`) or restricted (`rk_…`) key of this mode.")
    publishable_key: str = Field(description="The publishable key (`pk_…`) of this mode, for Stripe.js.")

    @field_validator("secret_key")
    @classmethod
    def _secret_key_of_this_mode(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        mode = _mode(info)
        if not re.fullmatch(rf"(?:sk|rk)_{mode}_{_BODY}", value.get_secret_value()):
            raise ValueError(
                f"must be a Stripe {mode}-mode secret key (sk_{mode}_…) or restricted key (rk_{mode}_…)"
            )
        return value

    @field_validator("publishable_key")
    @classmethod
    def _publishable_key_of_this_mode(cls, value: str, info: ValidationInfo) -> str:
        mode = _mode(info)
        if not re.fullmatch(rf"pk_{mode}_{_BODY}", value):
            raise ValueError(f"must be a Stripe {mode}-mode publishable key (pk_{mode}_…)")
        return value
