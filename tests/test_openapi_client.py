"""A newcomer generates a client from /openapi.json with openapi-python-client, and it runs the
money path against a running paycore: a product with the secret key, a cart and a checkout with the
publishable key, a payment on the sandbox, the order read back paid."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.cli.conftest import run_paycore
from tests.cli.test_server_commands import free_port, processes, start, wait_until_healthy

__all__ = ["processes"]  # the fixture, used by name below

PACKAGE = "paycore_client"


@pytest.fixture
def running(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> tuple[str, dict[str, str]]:
    """`paycore run` (API and worker, SQLite) on a free port, set up as the README says."""
    env = {"PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}", "PAYCORE_ENV": "development"}
    assert run_paycore("db", "migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_paycore("demo", "setup", env=env, cwd=tmp_path).returncode == 0
    port = free_port()
    process = start(["run", "--port", str(port)], env, tmp_path)
    processes.append(process)
    wait_until_healthy(port, process)
    keys: dict[str, str] = json.loads((tmp_path / "var" / "demo-keys.json").read_text())
    return f"http://127.0.0.1:{port}", keys


@pytest.fixture
def generated(running: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The client generated from the document the server serves, imported like any package."""
    api, _ = running
    directory = tmp_path_factory.mktemp("generated")
    (directory / "openapi.json").write_text(httpx.get(f"{api}/openapi.json").text)
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [str(generator), "generate", "--path", "openapi.json", "--meta", "none"],
        cwd=directory,
        # The generator formats its output with ruff, from the same environment.
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A warning means an operation or a model was left out of the client.
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(directory))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def operation(module: Any, tag: str, name: str) -> ModuleType:
    """The generated module of one operation: its tag, then its operationId (the route's name)."""
    found: ModuleType = module(f"api.{tag}.{name}")
    return found


class TestAGeneratedClient:
    def test_runs_the_money_path(self, running: tuple[str, dict[str, str]], generated: Any) -> None:
        api, keys = running
        client = generated("client")
        models = generated("models")
        with (
            client.AuthenticatedClient(base_url=api, token=keys["secret"]) as secret,
            client.AuthenticatedClient(base_url=api, token=keys["publishable"]) as publishable,
            client.Client(base_url=api) as anonymous,
        ):
            self.pay_and_read(generated, models, secret=secret, publishable=publishable, anonymous=anonymous)

    def pay_and_read(
        self, generated: Any, models: Any, *, secret: Any, publishable: Any, anonymous: Any
    ) -> None:

        product = operation(generated, "catalog", "create_product").sync(
            client=secret,
            body=models.ProductCreate(
                name="Course", price=4900, currency="EUR", kind=models.ProductKind.DIGITAL
            ),
            idempotency_key=str(uuid.uuid4()),
        )
        assert isinstance(product, models.ProductOut), product
        cart = operation(generated, "storefront", "create_cart").sync(
            client=publishable,
            body=models.CartCreate(items=[models.CartItemIn(product_id=product.id, quantity=1)]),
        )
        assert isinstance(cart, models.CartOut), cart
        checkout = operation(generated, "storefront", "checkout")
        key = str(uuid.uuid4())
        order_in = models.CheckoutIn(cart_id=cart.id, customer=models.CustomerIn(email="learner@example.com"))
        bought = checkout.sync(client=publishable, body=order_in, idempotency_key=key)
        assert isinstance(bought, models.CheckoutOut), bought
        assert bought.order.total == 4900
        # The documented Idempotency-Key works through the client: a retry gets the same order.
        again = checkout.sync_detailed(client=publishable, body=order_in, idempotency_key=key)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.parsed.order.id == bought.order.id

        # A publishable key is refused on the merchant API, in the typed error envelope.
        refused = operation(generated, "orders", "read_order").sync(
            client=publishable, order_id=bought.order.id
        )
        assert isinstance(refused, models.ErrorOut)
        assert refused.error.code == "secret_key_required"

        paid = operation(generated, "sandbox", "confirm").sync(
            client=anonymous,
            attempt_id=bought.payment.id,
            body=models.SandboxConfirmIn(outcome=models.SandboxConfirmInOutcome.SUCCEED),
        )
        assert isinstance(paid, models.SandboxPaymentOut), paid

        read_order = operation(generated, "orders", "read_order")
        status = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the sandbox's webhook reaches the server
            order = read_order.sync(client=secret, order_id=bought.order.id)
            assert isinstance(order, models.OrderDetailOut), order
            status = order.status
            if status in (models.OrderStatus.PAID, models.OrderStatus.FULFILLED):
                break
            time.sleep(0.2)
        assert status in (models.OrderStatus.PAID, models.OrderStatus.FULFILLED)
        assert order.amount_paid == 4900

        seen = operation(generated, "storefront", "read_storefront_order").sync(
            client=publishable, order_id=bought.order.id, x_receipt_token=bought.receipt_token
        )
        assert isinstance(seen, models.StorefrontOrderOut), seen
        assert seen.paid_at is not None
