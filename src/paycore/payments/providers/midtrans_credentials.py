"""What `PUT /v1/providers/midtrans` accepts: the account's server key and client key.

The server key is the only secret, and it is also what Midtrans signs notifications with — so
Midtrans needs no separate webhook secret. A sandbox account's keys start `SB-Mid-`, a production
account's `Mid-`: a key of the other world is refused for the mode being set, so test credentials
can never sign a live payment's notification or move live money.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

# Keys are ASCII without spaces; the part after the prefix is the account's own.
_KEY_BODY = re.compile(r"[A-Za-z0-9_\-]{4,200}")


def _mode(info: ValidationInfo) -> bool:
    context = info.context if isinstance(info.context, dict) else {}
    livemode = context.get("livemode")
    if not isinstance(livemode, bool):
        # Fail closed: which prefix is right depends on the mode; never guess it.
        raise ValueError("the mode (test or live) must be known to check a Midtrans key")
    return livemode


def _check(value: str, *, kind: str, livemode: bool) -> str:
    prefix = f"Mid-{kind}-" if livemode else f"SB-Mid-{kind}-"
    other = f"SB-Mid-{kind}-" if livemode else f"Mid-{kind}-"
    if not value.startswith(prefix):
        mode = "live" if livemode else "test"
        hint = (
            f" (that looks like a {'sandbox' if livemode else 'production'} key)"
            if value.startswith(other)
            else ""
        )
        # The message names the rule, never the value.
        raise ValueError(f"a {mode}-mode {kind} key starts with {prefix!r}{hint}")
    if not _KEY_BODY.fullmatch(value[len(prefix) :]):
        raise ValueError(f"the {kind} key has characters or a length no Midtrans key has")
    return value


class MidtransCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server_key: SecretStr = Field(description="Dashboard → Settings → Access Keys → Server Key.")
    client_key: str = Field(description="Dashboard → Settings → Access Keys → Client Key (public).")

    @field_validator("server_key")
    @classmethod
    def _server_key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        _check(value.get_secret_value(), kind="server", livemode=_mode(info))
        return value

    @field_validator("client_key")
    @classmethod
    def _client_key(cls, value: str, info: ValidationInfo) -> str:
        return _check(value, kind="client", livemode=_mode(info))
