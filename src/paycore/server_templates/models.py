from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, updated_column


class ServerTemplate(Base):
    """An operator-defined server: the creation spec its panel receives (`spec`) and the variables
    a product may set within bounds (`variables`, by name). Belongs to no tenant, like a plan; a
    plan names the templates its tenants may sell (`server_template:<code>` in its features)."""

    __tablename__ = "server_templates"

    id: Mapped[str] = id_column("stpl")
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
