"""The provisioners, by the name a product's fulfillment config gives (`config.provisioner`)."""

from __future__ import annotations

import httpx

from paycore.config import Settings
from paycore.fulfillment.provisioners.base import Provisioner
from paycore.fulfillment.provisioners.http import HttpProvisioner
from paycore.fulfillment.provisioners.pterodactyl import PterodactylProvisioner


def build_provisioners(
    settings: Settings, http: httpx.AsyncClient, merchant_http: httpx.AsyncClient | None = None
) -> dict[str, Provisioner]:
    """The generic provisioner calls a URL the merchant chose, so it gets `merchant_http`."""
    return {
        "http": HttpProvisioner(settings, merchant_http or http),
        "pterodactyl": PterodactylProvisioner(settings, http),
    }
