"""The provisioners, by the name a product's fulfillment config gives (`config.provisioner`)."""

from __future__ import annotations

import httpx

from paycore.config import Settings
from paycore.db import Database
from paycore.fulfillment.provisioners.base import Provisioner
from paycore.fulfillment.provisioners.http import HttpProvisioner
from paycore.fulfillment.provisioners.pterodactyl import PterodactylProvisioner


def build_provisioners(
    settings: Settings,
    database: Database,
    http: httpx.AsyncClient,
    merchant_http: httpx.AsyncClient | None = None,
) -> dict[str, Provisioner]:
    """The generic provisioner calls a URL the merchant chose, so it gets `merchant_http`; it
    reads the tenant's provisioning target (and its secret) from `database`."""
    return {
        "http": HttpProvisioner(settings, database, merchant_http or http),
        "pterodactyl": PterodactylProvisioner(settings, http),
    }
