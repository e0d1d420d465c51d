"""Settings, read from `PAYCORE_*` environment variables and `.env`, validated at start-up.

Every rule is a field validator, so one `ValidationError` carries every problem at once and
`load_settings` can list them all instead of stopping at the first.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from limits import parse
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from paycore.secrets_box import SecretsKeyError, parse_keyring

ENV_PREFIX = "PAYCORE_"
MIN_SECRET_LENGTH = 32

# Words that mark a value copied from an example rather than generated.
_PLACEHOLDER_MARKERS = (
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "replace",
    "dummy",
    "your-",
    "your_",
    "todo",
    "xxxx",
    "secret-key",
)

_DRIVER_BY_BACKEND = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_BACKEND_ALIASES = {"postgres": "postgresql"}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class SettingsError(Exception):
    """Configuration that cannot run; `problems` holds one plain sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def is_placeholder(value: str) -> bool:
    lowered = value.lower()
    if any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        return True
    # A long run of one or two characters ("aaaa…", "0000…") is not a generated secret.
    return len(set(value)) < 8


def normalize_database_url(raw: str) -> str:
    """Accept the URL forms people paste and return the async driver form we run on."""
    try:
        url: URL = make_url(raw)
    except ArgumentError as exc:
        raise ValueError("is not a database URL (expected sqlite+aiosqlite:///… or postgresql://…)") from exc
    backend, _, driver = url.drivername.partition("+")
    backend = _BACKEND_ALIASES.get(backend, backend)
    wanted = _DRIVER_BY_BACKEND.get(backend)
    if wanted is None:
        raise ValueError(f"uses the unsupported database '{backend}'; paycore runs on SQLite or PostgreSQL")
    if driver and f"{backend}+{driver}" != wanted:
        raise ValueError(f"uses the driver '{driver}'; paycore needs {wanted}")
    return url.set(drivername=wanted).render_as_string(hide_password=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    # `env` is declared first: later validators read it from `info.data`.
    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./var/paycore.db"
    database_pool_size: int = Field(default=10, ge=1, le=500)
    database_max_overflow: int = Field(default=10, ge=0, le=500)
    database_pgbouncer: bool = False
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    database_busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    redis_url: SecretStr | None = None
    checkout_token_secret: SecretStr | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_format: LogFormat | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    # Proxies (IPs or networks) whose X-Forwarded-For names the client; empty: none is believed.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_enabled: bool = True
    rate_limit_signin: str = "10/minute"
    rate_limit_storefront: str = "300/minute"
    rate_limit_merchant_api: str = "1200/minute"
    rate_limit_webhooks: str = "6000/minute"
    # Counters one process keeps in memory (without Redis); past it the oldest are dropped.
    rate_limit_memory_max_keys: int = Field(default=100_000, ge=100, le=10_000_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=100 * 1_048_576)
    # API keys, tenant standing and provider credentials are cached per process. While the
    # invalidation listener hears every process, a key is trusted this long (a revocation still
    # reaches every process within a second; this bounds a message lost on a silently broken
    # connection); while it does not (listener down, SQLite and the CLI), every cache entry is
    # trusted only `cache_unconfirmed_seconds`.
    api_key_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    api_key_cache_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    cache_unconfirmed_seconds: float = Field(default=1.0, ge=0, le=60)
    # On SIGTERM, keep serving this long with /ready answering 503, so load balancers stop
    # sending requests before the server stops accepting them.
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=300)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=600)
    worker_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    ready_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    public_url: str = "http://127.0.0.1:8000"
    order_ttl_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    late_payment_auto_refund: bool = True
    idempotency_key_ttl_hours: int = Field(default=24, ge=24, le=24 * 30)
    reconcile_after_minutes: int = Field(default=10, ge=1, le=24 * 60)
    event_max_apply_attempts: int = Field(default=8, ge=1, le=50)
    job_period_seconds: int = Field(default=30, ge=1, le=3600)
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    worker_batch_size: int = Field(default=50, ge=1, le=1000)
    worker_claim_seconds: int = Field(default=60, ge=5, le=3600)
    worker_shutdown_seconds: float = Field(default=10.0, ge=0, le=300)
    circuit_failure_threshold: int = Field(default=5, ge=1, le=100)
    circuit_reset_seconds: float = Field(default=30.0, gt=0, le=3600)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_from: str = "paycore <noreply@localhost>"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    email_templates_dir: str | None = None
    ops_alert_email: str | None = None
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    whatsapp_template: str = "order_confirmation"
    whatsapp_language: str = "en_US"
    webhook_target_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Lets tenant-chosen URLs (webhook endpoints, provisioning targets) reach private, loopback and
    # link-local addresses: for a developer's own machine only. Refused in production; named in a
    # warning at every start.
    allow_private_targets: bool = False
    webhook_order_wait_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    pterodactyl_url: str | None = None
    pterodactyl_api_key: SecretStr | None = None
    fulfillment_max_attempts: int = Field(default=8, ge=1, le=50)
    # Provider credentials are sealed with this (AES-256-GCM). "kid:base64key[,kid:base64key…]":
    # the first key seals, every key opens (rotation). Unset outside production: derived.
    secrets_key: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    paypal_api_base_live: str = "https://api-m.paypal.com"
    paypal_api_base_test: str = "https://api-m.sandbox.paypal.com"
    paypal_webhook_verification: Literal["online", "offline"] = "online"
    paypal_cert_trust_roots: str | None = None
    razorpay_api_base: str = "https://api.razorpay.com"
    midtrans_api_base_live: str = "https://api.midtrans.com"
    midtrans_api_base_test: str = "https://api.sandbox.midtrans.com"
    midtrans_snap_base_live: str = "https://app.midtrans.com"
    midtrans_snap_base_test: str = "https://app.sandbox.midtrans.com"

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.JSON if self.is_production else LogFormat.CONSOLE

    @property
    def whatsapp_enabled(self) -> bool:
        return self.whatsapp_token is not None and self.whatsapp_phone_number_id is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("checkout_token_secret")
    @classmethod
    def _checkout_token_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        production = info.data.get("env") is Environment.PRODUCTION
        if not secret:
            if production:
                raise ValueError(
                    "is required in production: set it to a random string of at least "
                    f"{MIN_SECRET_LENGTH} characters, for example the output of "
                    "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            return None
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters long")
        if is_placeholder(secret):
            raise ValueError("looks like a placeholder; generate a random value instead")
        return value

    @field_validator(
        "rate_limit_signin", "rate_limit_storefront", "rate_limit_merchant_api", "rate_limit_webhooks"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError("must be a rate like '100/minute' or '10 per second'") from None
        return value

    @field_validator("secrets_key")
    @classmethod
    def _secrets_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        try:
            parse_keyring(value.get_secret_value())
        except SecretsKeyError as exc:
            raise ValueError(str(exc)) from None  # the message names no key material
        return value

    @field_validator("allow_private_targets")
    @classmethod
    def _allow_private_targets(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("env") is Environment.PRODUCTION:
            raise ValueError(
                "may not be true in production: it lets any tenant make paycore call its internal "
                "network; list your own internal receivers in PAYCORE_WEBHOOK_TARGET_ALLOWLIST instead"
            )
        return value

    @field_validator("cors_origins", "webhook_target_allowlist", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "*" in value and info.data.get("env") is Environment.PRODUCTION:
            raise ValueError("may not contain '*' in production; list the storefront origins explicitly")
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"has '{origin}', which is not an origin like https://shop.example.com")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "must be the http(s) URL this service is reached at, like https://pay.example.com"
            )
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


def describe_validation_error(error: ValidationError) -> list[str]:
    """One sentence per problem, naming the environment variable; never echoes a value."""
    problems: list[str] = []
    for item in error.errors(include_input=False, include_url=False):
        name = ENV_PREFIX + "__".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}")
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise `SettingsError` listing every problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
