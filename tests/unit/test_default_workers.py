"""`paycore serve` without `--workers`: one process per core only where several are safe."""

from __future__ import annotations

import pytest

from paycore.serving import MAX_DEFAULT_WORKERS, default_workers
from tests.conftest import make_settings

POSTGRES = "postgresql+asyncpg://paycore@db/paycore"
REDIS = "redis://cache:6379/0"


class TestDefaultWorkers:
    def test_one_per_core_on_postgresql_with_redis(self) -> None:
        assert default_workers(make_settings(database_url=POSTGRES, redis_url=REDIS), cpu_count=2) == 2

    def test_capped_so_the_pools_fit_postgresql(self) -> None:
        settings = make_settings(database_url=POSTGRES, redis_url=REDIS)
        assert default_workers(settings, cpu_count=64) == MAX_DEFAULT_WORKERS

    def test_sqlite_keeps_one_process(self) -> None:
        sqlite = make_settings(database_url="sqlite+aiosqlite:///paycore.db", redis_url=REDIS)
        assert default_workers(sqlite, cpu_count=8) == 1

    def test_in_memory_rate_limits_keep_one_process(self) -> None:
        limited = make_settings(database_url=POSTGRES, rate_limit_enabled=True)
        assert default_workers(limited, cpu_count=8) == 1
        unlimited = make_settings(database_url=POSTGRES, rate_limit_enabled=False)
        assert default_workers(unlimited, cpu_count=8) == 4

    @pytest.mark.parametrize("drain", [0.5, 10])
    def test_a_drain_on_sigterm_keeps_one_process(self, drain: float) -> None:
        settings = make_settings(database_url=POSTGRES, redis_url=REDIS, shutdown_drain_seconds=drain)
        assert default_workers(settings, cpu_count=8) == 1
