"""The API's credentials as OpenAPI security schemes, so a generated client and Swagger's
Authorize button know which key each operation takes.

They are declared, not enforced: each is read with `auto_error=False`, and the key checks in
`auth.dependencies` and `platform.dependencies` read the `Authorization` header themselves (and
answer in paycore's error envelope, which FastAPI's own checks would not).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

SECRET_KEY = HTTPBearer(
    scheme_name="SecretKey",
    bearerFormat="sk_test_… / sk_live_…",
    description="A merchant's secret key, for its own server: the merchant API. Never in a browser.",
    auto_error=False,
)
PUBLISHABLE_KEY = HTTPBearer(
    scheme_name="PublishableKey",
    bearerFormat="pk_test_… / pk_live_…",
    description="A merchant's publishable key, safe in a storefront: products, carts, checkout.",
    auto_error=False,
)
PLATFORM_KEY = HTTPBearer(
    scheme_name="PlatformKey",
    bearerFormat="plat_…",
    description="The platform operator's key: tenants, plans, server templates.",
    auto_error=False,
)

SecretKeyScheme = Annotated[HTTPAuthorizationCredentials | None, Security(SECRET_KEY)]
PublishableKeyScheme = Annotated[HTTPAuthorizationCredentials | None, Security(PUBLISHABLE_KEY)]
PlatformKeyScheme = Annotated[HTTPAuthorizationCredentials | None, Security(PLATFORM_KEY)]
