from __future__ import annotations

from pathlib import Path

import pytest

from paycore.config import LogFormat, Settings, SettingsError, is_placeholder, load_settings

GOOD_SECRET = "k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ2kL4"


def load(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


def problems_of(**values: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load(**values)
    return caught.value.problems


class TestProductionRules:
    def test_checkout_token_secret_is_required_in_production(self) -> None:
        problems = problems_of(env="production")
        assert any(p.startswith("PAYCORE_CHECKOUT_TOKEN_SECRET: is required in production") for p in problems)

    def test_checkout_token_secret_is_optional_in_development(self) -> None:
        settings = load(env="development")
        assert settings.checkout_token_secret is None

    def test_short_secret_is_refused(self) -> None:
        problems = problems_of(env="production", checkout_token_secret="tooShort123")
        assert problems == ["PAYCORE_CHECKOUT_TOKEN_SECRET: must be at least 32 characters long"]

    @pytest.mark.parametrize(
        "secret",
        ["changeme-changeme-changeme-changeme", "your-secret-here-your-secret-here-00", "a" * 40, "01" * 20],
    )
    def test_placeholder_secret_is_refused(self, secret: str) -> None:
        problems = problems_of(env="production", checkout_token_secret=secret)
        assert problems == [
            "PAYCORE_CHECKOUT_TOKEN_SECRET: looks like a placeholder; generate a random value instead"
        ]

    def test_wildcard_cors_is_refused_in_production(self) -> None:
        problems = problems_of(env="production", checkout_token_secret=GOOD_SECRET, cors_origins="*")
        assert problems == [
            "PAYCORE_CORS_ORIGINS: may not contain '*' in production; list the storefront origins explicitly"
        ]

    def test_wildcard_cors_is_allowed_in_development(self) -> None:
        assert load(cors_origins="*").cors_origins == ["*"]

    def test_production_logs_are_json(self) -> None:
        settings = load(env="production", checkout_token_secret=GOOD_SECRET)
        assert settings.effective_log_format is LogFormat.JSON
        assert load().effective_log_format is LogFormat.CONSOLE

    def test_every_problem_is_listed_at_once(self) -> None:
        problems = problems_of(
            env="production",
            cors_origins="*",
            database_url="mysql://x@y/z",
            log_level="loud",
            database_pool_size=0,
        )
        names = sorted(problem.split(":", 1)[0] for problem in problems)
        assert names == [
            "PAYCORE_CHECKOUT_TOKEN_SECRET",
            "PAYCORE_CORS_ORIGINS",
            "PAYCORE_DATABASE_POOL_SIZE",
            "PAYCORE_DATABASE_URL",
            "PAYCORE_LOG_LEVEL",
        ]

    def test_problems_never_echo_the_value(self) -> None:
        secret = "sUpErSeCrEt-but-short"
        problems = problems_of(env="production", checkout_token_secret=secret)
        assert all(secret not in problem for problem in problems)


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgres://u:p@db:5432/pay", "postgresql+asyncpg://u:p@db:5432/pay"),
            ("postgresql://u@db/pay", "postgresql+asyncpg://u@db/pay"),
            ("postgresql+asyncpg://u@db/pay", "postgresql+asyncpg://u@db/pay"),
            ("sqlite:///./var/x.db", "sqlite+aiosqlite:///./var/x.db"),
        ],
    )
    def test_accepted_forms_become_the_async_driver(self, given: str, expected: str) -> None:
        assert load(database_url=given).database_url == expected

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ("mysql://u@db/pay", "uses the unsupported database 'mysql'"),
            ("postgresql+psycopg2://u@db/pay", "uses the driver 'psycopg2'"),
            ("not a url", "is not a database URL"),
        ],
    )
    def test_unsupported_urls_are_refused(self, given: str, message: str) -> None:
        (problem,) = problems_of(database_url=given)
        assert problem.startswith(f"PAYCORE_DATABASE_URL: {message}")

    def test_password_in_url_is_not_echoed(self) -> None:
        (problem,) = problems_of(database_url="mysql://user:hunter2secret@db/pay")
        assert "hunter2secret" not in problem


class TestOtherRules:
    def test_redis_url_scheme(self) -> None:
        (problem,) = problems_of(redis_url="http://cache:6379")
        assert problem == "PAYCORE_REDIS_URL: must start with redis://, rediss:// or unix://"
        assert load(redis_url="redis://127.0.0.1:6379/0").redis_url is not None

    def test_cors_origins_must_be_origins(self) -> None:
        (problem,) = problems_of(cors_origins="shop.example.com")
        assert "is not an origin" in problem

    def test_cors_origins_split_on_commas(self) -> None:
        settings = load(cors_origins="https://a.example, https://b.example")
        assert settings.cors_origins == ["https://a.example", "https://b.example"]

    def test_environment_variables_are_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PAYCORE_DATABASE_POOL_SIZE", "33")
        monkeypatch.setenv("PAYCORE_LOG_LEVEL", "warning")
        settings = load()
        assert settings.database_pool_size == 33
        assert settings.log_level == "WARNING"

    def test_env_file_is_read(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        env_file = tmp_path / ".env"
        env_file.write_text("PAYCORE_HTTP_PORT=9123\n")
        monkeypatch.chdir(tmp_path)
        assert load_settings().http_port == 9123


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [("example-secret-value-example-secret", True), (GOOD_SECRET, False), ("x" * 64, True)],
)
def test_is_placeholder(value: str, placeholder: bool) -> None:
    assert is_placeholder(value) is placeholder


class TestNewerSettings:
    def test_a_malformed_secrets_key_is_refused_without_echoing_it(self) -> None:
        problems = problems_of(secrets_key="k1:bm90LTMyLWJ5dGVz")
        assert len(problems) == 1 and problems[0].startswith("PAYCORE_SECRETS_KEY:")
        assert "bm90LTMyLWJ5dGVz" not in problems[0]

    def test_an_unreadable_rate_limit_is_refused(self) -> None:
        assert problems_of(rate_limit_storefront="lots") == [
            "PAYCORE_RATE_LIMIT_STOREFRONT: must be a rate like '100/minute' or '10 per second'"
        ]
