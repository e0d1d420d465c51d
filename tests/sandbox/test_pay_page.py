"""The sandbox's two doors, as the README names them: the payment page's form (form-encoded
`outcome`, posted to the page's own path) and the JSON API at `/confirm`. Both pay; each is
documented where it really is."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from paycore.config import Settings
from paycore.db import Database
from tests.flows.helpers import buy, create_product, deliver, open_shop, order

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


class TestThePaymentPagesForm:
    async def test_the_form_posts_its_outcome_where_the_readme_says_and_pays(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        attempt = bought["payment"]["id"]
        page = await client.get(f"/sandbox/pay/{attempt}")
        form = re.search(r'<form method="post" action="([^"]+)">', page.text)
        assert form is not None, page.text
        assert set(re.findall(r'name="(\w+)" value="(\w+)"', page.text)) == {
            ("outcome", "succeed"),
            ("outcome", "decline"),
        }
        assert form.group(1) == f"/sandbox/pay/{attempt}"
        # The README says where the form goes and what it sends.
        assert "`POST /sandbox/pay/{attempt_id}`" in README
        assert "`outcome=succeed`" in README and "form-encoded" in README

        paid = await client.post(form.group(1), data={"outcome": "succeed"})  # what the Pay button sends
        assert paid.status_code == 200 and "This payment is succeeded." in paid.text
        await deliver(db, settings, client)
        assert (await order(client, shop, bought["order"]["id"]))["paid_at"] is not None


class TestTheJsonApi:
    async def test_confirm_takes_json_as_the_readme_says(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        attempt = bought["payment"]["id"]
        assert '`POST /sandbox/pay/{attempt_id}/confirm` (JSON: `{"outcome": "succeed"}`' in README

        as_a_form = await client.post(f"/sandbox/pay/{attempt}/confirm", data={"outcome": "succeed"})
        assert as_a_form.status_code == 415  # a clear refusal, not a payment: the README says JSON
        assert as_a_form.json()["error"]["code"] == "unsupported_content_type"

        paid = await client.post(f"/sandbox/pay/{attempt}/confirm", json={"outcome": "succeed"})
        assert paid.status_code == 200, paid.text
        assert (paid.json()["merchant_reference"], paid.json()["status"]) == (attempt, "succeeded")
        await deliver(db, settings, client)
        assert (await order(client, shop, bought["order"]["id"]))["paid_at"] is not None
