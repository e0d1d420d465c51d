"""Imports every model module, so `Base.metadata` knows every table (for Alembic and checks)."""

from paycore.audit import models as audit_models
from paycore.auth import models as auth_models
from paycore.db import Base
from paycore.tenancy import models as tenancy_models
from paycore.worker import models as worker_models

metadata = Base.metadata

__all__ = ["audit_models", "auth_models", "metadata", "tenancy_models", "worker_models"]
