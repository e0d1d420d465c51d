"""Imports every model module, so `Base.metadata` knows every table (for Alembic and checks)."""

from paycore.admin import models as admin_models
from paycore.audit import models as audit_models
from paycore.auth import models as auth_models
from paycore.carts import models as cart_models
from paycore.catalog import models as catalog_models
from paycore.customers import models as customer_models
from paycore.db import Base
from paycore.fulfillment import models as fulfillment_models
from paycore.idempotency import models as idempotency_models
from paycore.merchant_webhooks import models as merchant_webhook_models
from paycore.notifications import models as notification_models
from paycore.orders import models as order_models
from paycore.outbox import models as outbox_models
from paycore.payments import models as payment_models
from paycore.platform import models as platform_models
from paycore.provider_credentials import models as provider_credential_models
from paycore.provisioning_targets import models as provisioning_target_models
from paycore.sandbox import models as sandbox_models
from paycore.server_templates import models as server_template_models
from paycore.tenancy import models as tenancy_models
from paycore.worker import models as worker_models

metadata = Base.metadata

__all__ = [
    "admin_models",
    "audit_models",
    "auth_models",
    "cart_models",
    "catalog_models",
    "customer_models",
    "fulfillment_models",
    "idempotency_models",
    "merchant_webhook_models",
    "metadata",
    "notification_models",
    "order_models",
    "outbox_models",
    "payment_models",
    "platform_models",
    "provider_credential_models",
    "provisioning_target_models",
    "sandbox_models",
    "server_template_models",
    "tenancy_models",
    "worker_models",
]
