"""What `PUT /v1/providers/midtrans` accepts: keys of the mode being set, the server key secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paycore.payments.providers.midtrans_credentials import MidtransCredentials
from tests.providers.midtrans.fake import CLIENT_KEY, LIVE_CLIENT_KEY, LIVE_SERVER_KEY, SERVER_KEY


class TestCredentials:
    def test_sandbox_keys_in_test_mode(self) -> None:
        parsed = MidtransCredentials.model_validate(
            {"server_key": SERVER_KEY, "client_key": CLIENT_KEY}, context={"livemode": False}
        )
        assert parsed.server_key.get_secret_value() == SERVER_KEY
        assert SERVER_KEY not in repr(parsed)

    def test_production_keys_in_live_mode(self) -> None:
        MidtransCredentials.model_validate(
            {"server_key": LIVE_SERVER_KEY, "client_key": LIVE_CLIENT_KEY}, context={"livemode": True}
        )

    @pytest.mark.parametrize(
        ("values", "livemode"),
        [
            ({"server_key": LIVE_SERVER_KEY, "client_key": CLIENT_KEY}, False),
            ({"server_key": SERVER_KEY, "client_key": LIVE_CLIENT_KEY}, False),
            ({"server_key": SERVER_KEY, "client_key": CLIENT_KEY}, True),
            ({"server_key": "SB-Mid-server-has space", "client_key": CLIENT_KEY}, False),
            ({"server_key": SERVER_KEY}, False),
            ({"server_key": SERVER_KEY, "client_key": CLIENT_KEY, "webhook": "x"}, False),
        ],
    )
    def test_keys_of_the_other_world_or_malformed_are_refused(
        self, values: dict[str, str], livemode: bool
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            MidtransCredentials.model_validate(values, context={"livemode": livemode})
        assert "SB-Mid-server-TEST" not in str(caught.value.errors(include_input=False))

    def test_without_a_mode_nothing_is_accepted(self) -> None:
        with pytest.raises(ValidationError, match="mode"):
            MidtransCredentials.model_validate({"server_key": SERVER_KEY, "client_key": CLIENT_KEY})
