"""What `PUT /v1/providers/razorpay` accepts: a key pair from Dashboard → Account & Settings → API Keys.

The key id's prefix names its mode (`rzp_test_…`, `rzp_live_…`); a key of the other mode is refused,
so a test API key can never set live credentials nor a live key test ones. Error messages name the
rule, never the value given.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

_KEY_ID = re.compile(r"rzp_(test|live)_[A-Za-z0-9]{1,64}")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


class RazorpayCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str = Field(min_length=10, max_length=80)
    key_secret: SecretStr = Field(min_length=8, max_length=200)

    @field_validator("key_id")
    @classmethod
    def _key_of_this_mode(cls, value: str, info: ValidationInfo) -> str:
        livemode = (info.context or {}).get("livemode")
        if not isinstance(livemode, bool):
            raise ValueError("the mode these credentials are for is not known")  # fail closed
        if not _KEY_ID.fullmatch(value):
            raise ValueError("must be a Razorpay key id (rzp_test_… or rzp_live_…)")
        expected = "rzp_live_" if livemode else "rzp_test_"
        if not value.startswith(expected):
            mode = "live" if livemode else "test"
            raise ValueError(f"must start with {expected} in {mode} mode")
        return value

    @field_validator("key_secret")
    @classmethod
    def _no_stray_characters(cls, value: SecretStr) -> SecretStr:
        # A secret pasted with a newline or a space would fail every call later, far from here.
        if not _PRINTABLE.fullmatch(value.get_secret_value()):
            raise ValueError("must not contain spaces, line breaks or other non-printing characters")
        return value
