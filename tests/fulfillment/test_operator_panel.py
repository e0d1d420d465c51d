"""Issue 11, finding 1: a tenant must not be able to create any server it likes on the operator's
Pterodactyl panel, nor "pay" for one with a webhook it signed itself. These tests replay the probe
through the HTTP API (live tenant, Razorpay, a self-signed `payment.captured`) and pin what holds
now: operator templates with bounded variables, a plan that names them, quotas, and a payment
confirmed with the provider's API under the tenant's key before the panel is called."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update

from paycore.auth.models import KeyMode
from paycore.db import Database
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.payments.models import PaymentAttempt
from tests.flows.helpers import buy, confirm, deliver
from tests.fulfillment.fakes import FakePanel
from tests.fulfillment.panel_harness import (
    MINER_SPEC,
    TEMPLATE_CODE,
    TEMPLATE_SPEC,
    PanelHarness,
    panel_harness,
    server_config,
    unreachable_registry,
)


@pytest.fixture
async def live(db: Database, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PanelHarness]:
    async with panel_harness(db, monkeypatch) as harness:
        await harness.put_on_plan("games")
        yield harness


def expected_body(
    harness: PanelHarness, fulfillment_id: str, number: str, **variables: Any
) -> dict[str, Any]:
    """Exactly the template's spec, the product's bounded variables set in it, and our name and id."""
    environment = dict(TEMPLATE_SPEC["environment"])
    limits = dict(TEMPLATE_SPEC["limits"])
    for name, value in variables.items():
        (limits if name == "memory" else environment)[name] = value
    return {
        **TEMPLATE_SPEC,
        "environment": environment,
        "limits": limits,
        "skip_scripts": False,
        "start_on_completion": True,
        "name": f"Game server {number}",
        "external_id": fulfillment_id,
    }


class TestAProductCannotCarryItsOwnServer:
    async def test_the_probes_raw_miner_spec_is_refused(self, live: PanelHarness) -> None:
        raw = await live.create_product({"provisioner": "pterodactyl", "server": MINER_SPEC})
        assert raw.status_code == 422, raw.text
        error = raw.json()["error"]
        assert (error["code"], error["param"]) == ("field_not_allowed", "fulfillment.config.server")

        # A template does not carry a raw spec in with it either.
        smuggled = await live.create_product({**server_config(), "server": MINER_SPEC})
        assert smuggled.status_code == 422, smuggled.text
        assert smuggled.json()["error"]["param"] == "fulfillment.config.server"

        listed = await live.http.get("/v1/products", headers=live.shop.secret)
        assert listed.json()["data"] == []  # nothing was written

    @pytest.mark.parametrize(
        ("variables", "param"),
        [
            ({"memory": 65536}, "fulfillment.config.variables.memory"),
            ({"memory": "4096"}, "fulfillment.config.variables.memory"),
            ({"MAX_PLAYERS": 0}, "fulfillment.config.variables.MAX_PLAYERS"),
            ({"VERSION": "latest"}, "fulfillment.config.variables.VERSION"),
            ({"oom_disabled": True}, "fulfillment.config.variables.oom_disabled"),
            ({"docker_image": "ghcr.io/mallory/miner"}, "fulfillment.config.variables.docker_image"),
        ],
    )
    async def test_variables_outside_the_templates_bounds_are_refused(
        self, live: PanelHarness, variables: dict[str, Any], param: str
    ) -> None:
        response = await live.create_product(server_config(**variables))
        assert response.status_code == 422, response.text
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "variable_out_of_bounds",
            param,
        )

    async def test_a_template_the_plan_does_not_name_is_refused(
        self, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with panel_harness(db, monkeypatch) as harness:
            await harness.put_on_plan("shop-only", features=["whatsapp"])
            for config in (server_config(), {**server_config(), "template": "no-such-template"}):
                response = await harness.create_product(config)
                assert response.status_code == 403, response.text
                error = response.json()["error"]
                assert (error["code"], error["param"]) == (
                    "feature_not_in_plan",
                    "fulfillment.config.template",
                )

    async def test_the_same_rules_hold_when_a_product_is_changed(self, live: PanelHarness) -> None:
        product_id = await live.product(server_config(memory=2048))
        changed = await live.http.patch(
            f"/v1/products/{product_id}",
            json={
                "fulfillment": {
                    "type": "provision",
                    "config": {"provisioner": "pterodactyl", "server": MINER_SPEC},
                }
            },
            headers=live.shop.secret,
        )
        assert changed.status_code == 422, changed.text
        assert changed.json()["error"]["param"] == "fulfillment.config.server"
        product = await live.http.get(f"/v1/products/{product_id}", headers=live.shop.secret)
        assert product.json()["fulfillment"]["config"] == server_config(memory=2048)

    async def test_an_unknown_provisioner_is_refused(self, live: PanelHarness) -> None:
        response = await live.create_product({"provisioner": "kubernetes"})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["param"] == "fulfillment.config.provisioner"


class TestOnlyAConfirmedPaymentReachesThePanel:
    async def test_a_self_signed_capture_does_not_reach_the_panel_until_razorpay_confirms(
        self, live: PanelHarness
    ) -> None:
        bought = await live.buy(await live.product(server_config(memory=4096, MAX_PLAYERS=30)))
        payment = await live.self_signed_capture(bought)
        assert await live.order_status(bought.order_id) == "paid"  # the tenant's word, on its own

        assert await live.run_worker() == 1
        row = await live.fulfillment(bought.order_id)
        assert live.panel.calls == []
        assert row.status is FulfillmentStatus.RETRYING
        assert row.last_error is not None
        assert "has not confirmed the payment" in row.last_error
        # Razorpay was asked, with the tenant's own key, about this order's payments.
        assert live.razorpay.calls_to("GET", f"/v1/orders/{bought.razorpay_order_id}") >= 1
        assert row.server_memory_mb is None  # no quota taken

        live.razorpay.capture(payment["id"])  # the money really arrives
        await live.make_due(bought.order_id)
        assert await live.run_worker() == 1

        row = await live.fulfillment(bought.order_id)
        (body,) = live.panel.creations
        assert body == expected_body(live, row.id, bought.number, memory=4096, MAX_PLAYERS=30)
        assert (row.status, row.server_memory_mb) == (FulfillmentStatus.SUCCEEDED, 4096)
        assert await live.order_status(bought.order_id) == "fulfilled"

    async def test_an_unreachable_provider_is_asked_again_later(self, live: PanelHarness) -> None:
        bought = await live.buy(await live.product(server_config()))
        await live.paid_for_real(bought)
        unreachable = unreachable_registry(live)
        try:
            assert await live.run_worker(unreachable) == 1
        finally:
            await unreachable.aclose()
        row = await live.fulfillment(bought.order_id)
        assert live.panel.calls == []
        assert row.status is FulfillmentStatus.RETRYING  # not failed open, not given up
        assert row.last_error is not None
        assert "could not confirm the payment with razorpay" in row.last_error
        assert await live.ops_alerts() == []

        await live.make_due(bought.order_id)
        assert await live.run_worker() == 1
        assert (await live.fulfillment(bought.order_id)).status is FulfillmentStatus.SUCCEEDED
        assert len(live.panel.creations) == 1

    async def test_a_retry_after_a_timeout_finds_the_server_and_counts_it_once(
        self, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with panel_harness(db, monkeypatch) as harness:
            await harness.put_on_plan("one-server", max_servers=1)
            harness.panel = FakePanel(timeout_after_create=True)
            bought = await harness.buy(await harness.product(server_config()))
            await harness.paid_for_real(bought)
            assert await harness.run_worker() == 1
            row = await harness.fulfillment(bought.order_id)
            assert row.status is FulfillmentStatus.RETRYING
            assert len(harness.panel.servers) == 1  # made, though we never heard back

            await harness.make_due(bought.order_id)
            assert await harness.run_worker() == 1  # its own reservation does not count against it
            row = await harness.fulfillment(bought.order_id)
            assert (row.status, row.result_ref) == (FulfillmentStatus.SUCCEEDED, str(*harness.panel.servers))
            assert len(harness.panel.creations) == 1
            assert harness.panel.calls[-1] == ("GET", f"/api/application/servers/external/{row.id}")


class TestQuotas:
    @pytest.mark.parametrize(
        ("quota", "reason"),
        [({"max_servers": 1}, "server quota"), ({"max_server_memory_mb": 6000}, "memory quota")],
    )
    async def test_over_quota_needs_attention_without_reaching_the_panel(
        self, db: Database, monkeypatch: pytest.MonkeyPatch, quota: dict[str, int], reason: str
    ) -> None:
        async with panel_harness(db, monkeypatch) as harness:
            await harness.put_on_plan("capped", **quota)
            product_id = await harness.product(server_config(memory=4096))
            first, second = await harness.buy(product_id), await harness.buy(product_id)
            await harness.paid_for_real(first)
            await harness.paid_for_real(second)

            assert await harness.run_worker() == 2
            assert len(harness.panel.creations) == 1  # never a second, never a partial one
            rows = [await harness.fulfillment(first.order_id), await harness.fulfillment(second.order_id)]
            assert sorted(row.status.value for row in rows) == ["needs_attention", "succeeded"]
            refused = next(row for row in rows if row.status is FulfillmentStatus.NEEDS_ATTENTION)
            assert refused.last_error is not None
            assert reason in refused.last_error
            assert refused.next_attempt_at is None
            (alert,) = await harness.ops_alerts()
            assert alert.topic == "fulfillment_needs_attention"
            assert alert.payload["details"]["fulfillment"] == refused.id
            assert reason in alert.payload["message"]


class TestWhatNeverProvisions:
    async def test_a_plan_that_no_longer_names_the_template_stops_provisioning(
        self, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with panel_harness(db, monkeypatch) as harness:
            await harness.put_on_plan("games")
            bought = await harness.buy(await harness.product(server_config()))
            await harness.put_on_plan("downgraded", features=[])
            await harness.paid_for_real(bought)
            assert await harness.run_worker() == 1
            row = await harness.fulfillment(bought.order_id)
            assert harness.panel.calls == []
            assert row.status is FulfillmentStatus.NEEDS_ATTENTION
            assert row.last_error is not None
            assert "does not include server template" in row.last_error

    async def test_test_mode_is_a_dry_run(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        async with panel_harness(db, monkeypatch, mode=KeyMode.TEST) as harness:
            await harness.put_on_plan("games")
            bought = await buy(harness.http, harness.shop, await harness.product(server_config()))
            await confirm(harness.http, bought["payment"]["id"])
            assert await deliver(harness.db, harness.settings, harness.http) >= 1
            assert await harness.run_worker() == 1
            row = await harness.fulfillment(bought["order"]["id"])
            assert harness.panel.calls == []
            assert (row.status, row.result_ref) == (FulfillmentStatus.SUCCEEDED, "test-mode:not-created")

    async def test_a_sandbox_payment_never_reaches_the_panel_in_live_mode(
        self, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with panel_harness(db, monkeypatch, mode=KeyMode.TEST) as harness:
            await harness.put_on_plan("games")
            bought = await buy(harness.http, harness.shop, await harness.product(server_config()))
            await confirm(harness.http, bought["payment"]["id"])
            assert await deliver(harness.db, harness.settings, harness.http) >= 1
            order_id = bought["order"]["id"]
            # Were a sandbox payment ever to stand behind a live fulfillment, it is free money:
            async with db.session() as session:
                for table in (Fulfillment, PaymentAttempt):
                    await session.execute(
                        update(table).where(table.order_id == order_id).values(livemode=True)
                    )
            assert await harness.run_worker() == 1
            row = await harness.fulfillment(order_id)
            assert harness.panel.calls == []
            assert row.status is FulfillmentStatus.NEEDS_ATTENTION
            assert row.last_error is not None
            assert "sandbox payment is not live money" in row.last_error

    async def test_a_product_written_before_templates_is_not_provisioned(
        self, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from paycore.catalog.models import Product

        async with panel_harness(db, monkeypatch) as harness:
            await harness.put_on_plan("games")
            product_id = await harness.product(server_config())
            async with db.session() as session:  # as the old API let it be written
                await session.execute(
                    update(Product)
                    .where(Product.id == product_id)
                    .values(
                        fulfillment={
                            "type": "provision",
                            "config": {"provisioner": "pterodactyl", "server": MINER_SPEC},
                        }
                    )
                )
            bought = await harness.buy(product_id)
            await harness.paid_for_real(bought)
            assert await harness.run_worker() == 1
            row = await harness.fulfillment(bought.order_id)
            assert harness.panel.calls == []
            assert row.status is FulfillmentStatus.NEEDS_ATTENTION
            assert row.last_error is not None
            assert "server" in row.last_error


def test_the_template_code_is_what_the_plan_feature_names() -> None:
    from paycore.server_templates.service import template_feature

    assert template_feature(TEMPLATE_CODE) == "server_template:mc-small"
