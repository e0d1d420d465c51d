"""Where paycore may send a request on a merchant's behalf (webhooks, provisioners).

In production a target resolving to a private, loopback, link-local, multicast or reserved address
is refused — otherwise anyone with a merchant key could make paycore probe its own network (SSRF) —
unless the host or its network is on `PAYCORE_WEBHOOK_TARGET_ALLOWLIST`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from paycore.config import Settings
from paycore.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """A URL paycore will not call; the message says why (safe to show the merchant)."""


def check_url_shape(url: str, *, production: bool) -> None:
    """Refuse at once what no resolution can fix (used when an endpoint is created)."""
    try:
        parts = urlsplit(url)
        httpx.URL(url)  # what will send to it must be able to parse it too (ports, brackets, …)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except (ValueError, httpx.InvalidURL):
        raise ValidationFailed("url is not a valid URL.", param="url") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationFailed("url must be an absolute http(s) URL.", param="url")
    if production and parts.scheme != "https":
        raise ValidationFailed("url must use https.", param="url")
    if parts.username or parts.password:
        raise ValidationFailed("url may not carry credentials.", param="url")


def _allowed(address: IPAddress, host: str, allowlist: list[str]) -> bool:
    for entry in allowlist:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def is_internal(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def check_target(url: str, settings: Settings) -> None:
    """Raise `TargetRefused` when `url` may not be called from this deployment."""
    if not settings.is_production:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"{host} does not resolve ({exc.strerror or exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if is_internal(address) and not _allowed(address, host, settings.webhook_target_allowlist):
            raise TargetRefused(f"{host} resolves to an internal address ({address}); refused in production")
