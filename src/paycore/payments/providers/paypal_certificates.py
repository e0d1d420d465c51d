"""PayPal's webhook-signing certificates, fetched from the URL a webhook names — only when the URL
passes `cert_url_allowed` — and kept by URL once they verify (a bounded cache per adapter)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from pathlib import Path

import certifi
import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.verification import Store

from paycore.config import Settings
from paycore.payments.providers.base import ProviderUnavailable
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.paypal_signing import (
    SignatureRefused,
    cert_url_allowed,
    load_trust_roots,
    parse_certificates,
    validated_signing_key,
)

MAX_CACHED_CERTIFICATES = 16
# A certificate chain is a few kilobytes; anything much bigger is not one.
MAX_CERTIFICATE_BYTES = 64 * 1024


class CertificateFetcher:
    def __init__(self, settings: Settings, http: ProviderHttp) -> None:
        self._settings = settings
        self._http = http
        self._roots: Store | None = None
        self._cache: OrderedDict[str, list[x509.Certificate]] = OrderedDict()

    async def signing_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        """The key that signs webhooks under `url`, its chain verified at `now` (also when cached:
        a certificate may expire while we hold it)."""
        if not cert_url_allowed(url):
            raise SignatureRefused("cert_url_refused", "the certificate URL is not PayPal's")
        certificates = self._cache.get(url)
        if certificates is None:
            certificates = parse_certificates(await self._download(url))
            key = validated_signing_key(certificates, self._trust_roots(), now)
            self._cache[url] = certificates
            while len(self._cache) > MAX_CACHED_CERTIFICATES:
                self._cache.popitem(last=False)
            return key
        self._cache.move_to_end(url)
        return validated_signing_key(certificates, self._trust_roots(), now)

    async def _download(self, url: str) -> bytes:
        try:
            async with self._http.client.stream("GET", url) as response:
                if response.status_code >= 500 or response.status_code == httpx.codes.TOO_MANY_REQUESTS:
                    raise ProviderUnavailable(
                        f"paypal answered HTTP {response.status_code} for its certificate"
                    )
                if response.status_code != httpx.codes.OK:
                    raise SignatureRefused(
                        "certificate_unavailable", f"the certificate URL answered HTTP {response.status_code}"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_CERTIFICATE_BYTES:
                        raise SignatureRefused("certificate_invalid", "the certificate is too large")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"paypal's certificate could not be fetched: {type(exc).__name__}"
            ) from None
        return b"".join(chunks)

    def _trust_roots(self) -> Store:
        if self._roots is None:
            path = self._settings.paypal_cert_trust_roots or certifi.where()
            try:
                self._roots = load_trust_roots(Path(path).read_bytes())
            except (OSError, ValueError) as exc:
                # A deployment problem, not the sender's: unverifiable now, so PayPal retries.
                raise ProviderUnavailable(
                    f"the PayPal trust roots cannot be read: {type(exc).__name__}"
                ) from None
        return self._roots
