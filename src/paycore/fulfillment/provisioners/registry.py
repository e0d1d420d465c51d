"""The provisioners, by the name a product's fulfillment config gives (`config.provisioner`)."""

from __future__ import annotations

import httpx

from paycore.config import Settings
from paycore.fulfillment.provisioners.base import Provisioner
from paycore.fulfillment.provisioners.http import HttpProvisioner
from paycore.fulfillment.provisioners.pterodactyl import PterodactylProvisioner


def build_provisioners(settings: Settings, http: httpx.AsyncClient) -> dict[str, Provisioner]:
    return {
        "http": HttpProvisioner(settings, http),
        "pterodactyl": PterodactylProvisioner(settings, http),
    }
