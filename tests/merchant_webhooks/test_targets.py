"""Where paycore may send on a merchant's behalf: the address check, and its connect-time twin."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paycore.merchant_webhooks.targets import TargetRefused, guarded_client, is_internal
from tests.conftest import make_settings

PRODUCTION = {"env": "production", "checkout_token_secret": "k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ"}


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("169.254.169.254", True),  # the cloud metadata service
        ("100.64.0.1", True),  # carrier-grade NAT
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("::ffff:169.254.169.254", True),
        ("2002:7f00:1::", True),  # 6to4 wrapping 127.0.0.1
        ("fe80::1", True),
        ("93.184.216.34", False),
        ("2606:4700::6810:84e5", False),
        ("::ffff:93.184.216.34", False),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_address(address)) is internal


@pytest.fixture
def local_server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class TestGuardedClient:
    """The check runs when the connection is made, so a name that resolved outside when it was
    checked and inside when it is called (DNS rebinding) is still refused."""

    async def test_a_name_resolving_inside_is_refused_at_connect_in_production(
        self, local_server: int
    ) -> None:
        async with guarded_client(make_settings(**PRODUCTION), timeout=5) as http:
            with pytest.raises(TargetRefused, match="internal address"):
                await http.post(f"http://localhost:{local_server}/hook", content=b"{}")

    async def test_the_allowlist_lets_it_through(self, local_server: int) -> None:
        allowed = make_settings(**PRODUCTION, webhook_target_allowlist="127.0.0.0/8,::1/128")
        async with guarded_client(allowed, timeout=5) as http:
            response = await http.post(f"http://localhost:{local_server}/hook", content=b"{}")
        assert response.status_code == 204

    async def test_outside_production_it_is_checked_too(self, local_server: int) -> None:
        async with guarded_client(make_settings(env="development"), timeout=5) as http:
            with pytest.raises(TargetRefused, match="internal address"):
                await http.post(f"http://127.0.0.1:{local_server}/hook", content=b"{}")

    async def test_the_development_setting_lets_it_through(self, local_server: int) -> None:
        allowed = make_settings(env="development", allow_private_targets=True)
        async with guarded_client(allowed, timeout=5) as http:
            response = await http.post(f"http://127.0.0.1:{local_server}/hook", content=b"{}")
        assert response.status_code == 204
