"""Where paycore may send a request on a merchant's behalf (webhooks, provisioners).

In every environment a target resolving to a private, loopback, link-local, multicast or reserved
address is refused — otherwise anyone with a merchant key could make paycore probe its own network
(SSRF) — unless the host or its network is on `PAYCORE_WEBHOOK_TARGET_ALLOWLIST`, or a developer
turned the guard off for their own machine with `PAYCORE_ALLOW_PRIVATE_TARGETS` (refused in
production, and named in a warning at every start).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from paycore.config import Settings
from paycore.errors import ValidationFailed
from paycore.logging import get_logger

log = get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """A URL paycore will not call; the message says why (safe to show the merchant: it names
    neither the address a name resolved to nor anything the target answered)."""


class TargetUnresolvable(TargetRefused):
    """The host name has no address (now): nothing can be sent, nor anything learnt inside."""


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


# Ranges Python's `is_private` misses that still lead inside: carrier-grade NAT (often a cloud's
# internal network) and 6to4, which embeds an arbitrary IPv4 address.
_ALSO_INTERNAL = [ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("2002::/16")]


def is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_internal(address.ipv4_mapped)  # ::ffff:127.0.0.1 is 127.0.0.1
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in network for network in _ALSO_INTERNAL)
    )


async def checked_addresses(host: str, settings: Settings) -> list[IPAddress]:
    """Resolve `host` and return its addresses, or raise `TargetRefused` if any is internal and
    not allowed (one internal answer is enough to refuse: which one a connection gets is luck)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetUnresolvable(f"{host} does not resolve") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if (
            is_internal(address)
            and not settings.allow_private_targets
            and not _allowed(address, host, settings.webhook_target_allowlist)
        ):
            # Which address is not said: the answer would map the operator's internal DNS.
            raise TargetRefused(f"{host} resolves to an internal address; paycore does not call those")
        if address not in addresses:
            addresses.append(address)
    return addresses


async def check_target(url: str, settings: Settings) -> None:
    """Raise `TargetRefused` when `url` leads to an address this deployment may not call (an
    early, clear answer; `guarded_client` checks again at connect time, where it counts). A name
    that does not resolve now is left to the connection, which resolves and checks it again."""
    try:
        await checked_addresses(urlsplit(url).hostname or "", settings)
    except TargetUnresolvable:
        return


async def check_new_target(url: str, settings: Settings) -> None:
    """Refuse, as a 422 on `url`, a URL a merchant wants to register that no delivery could use:
    a malformed one, or one leading to an internal address."""
    check_url_shape(url, production=settings.is_production)
    try:
        await check_target(url, settings)
    except TargetRefused as exc:
        raise ValidationFailed(f"url is refused: {exc}.", param="url") from None


def warn_if_private_targets_allowed(settings: Settings) -> None:
    """Say at start-up, loudly, that the SSRF guard is off (a development-only setting)."""
    if settings.allow_private_targets:
        log.warning(
            "private_targets_allowed",
            setting="PAYCORE_ALLOW_PRIVATE_TARGETS",
            why="tenant-chosen URLs may reach private, loopback and link-local addresses; "
            "for a developer's own machine only",
        )


class _CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host at the moment of connecting, then connects to a checked
    address — so a DNS answer that changes between `check_target` and the request (rebinding)
    cannot lead inside. TLS still verifies the certificate against the host name."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, settings: Settings) -> None:
        self._inner = inner
        self._settings = settings

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, self._settings)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not a target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(settings: Settings, *, timeout: float) -> httpx.AsyncClient:
    """The HTTP client for URLs a merchant chose (webhook endpoints, provisioning targets): every
    connection is checked as it is made, in every environment. Operator-configured targets (the
    Pterodactyl panel, WhatsApp) use a plain client: the operator may well run them inside."""
    transport = httpx.AsyncHTTPTransport()
    # httpx does not take a network backend; its connection pool does (httpcore 1.x).
    pool = transport._pool
    pool._network_backend = _CheckedNetworkBackend(pool._network_backend, settings)
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
