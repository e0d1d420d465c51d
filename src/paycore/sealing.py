"""The keyring every sealed column is sealed under: provider credentials, merchant webhook
secrets and saved idempotent answers.

`PAYCORE_SECRETS_KEY` when set. Outside production a key derived from the server secret stands in
(so `make run` and the tests need nothing set); production without it refuses to seal or open
(503 `secrets_key_missing`) rather than keep a secret in the clear.
"""

from __future__ import annotations

from paycore.config import Settings
from paycore.errors import ServiceUnavailable
from paycore.secrets_box import SecretsBox
from paycore.server_secret import derive_key


class SecretsKeyMissing(ServiceUnavailable):
    code = "secrets_key_missing"


def secrets_box(settings: Settings) -> SecretsBox:
    if settings.secrets_key is not None:
        return SecretsBox.from_setting(settings.secrets_key.get_secret_value())
    if settings.is_production:
        raise SecretsKeyMissing("PAYCORE_SECRETS_KEY is not set; secrets cannot be sealed or opened.")
    # The derivation's purpose name predates the other sealed columns; changing it would leave
    # every development row sealed under a key no longer derived. Each use still authenticates
    # its own context, so a value never opens in another place.
    return SecretsBox([("dev", derive_key(settings, "provider-credentials"))])
