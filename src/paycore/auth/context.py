"""Who the caller is, as every service sees it."""

from __future__ import annotations

from dataclasses import dataclass

from paycore.audit.service import Actor
from paycore.auth.models import KeyKind, Scope


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant_id: str
    tenant_slug: str
    livemode: bool
    key_id: str
    key_kind: KeyKind
    scopes: frozenset[Scope]
    actor: Actor
