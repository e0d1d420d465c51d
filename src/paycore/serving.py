"""Running the API server and the worker in this process, with a graceful stop on SIGINT/SIGTERM.

uvicorn's own signal capture re-raises the signal after shutdown (ending the process with 130/143
and cutting short anything else on the loop); paycore owns the signals instead, stops the server
and the worker together, and exits 0.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from paycore.app import registry_for
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.logging import get_logger
from paycore.merchant_webhooks.targets import warn_if_private_targets_allowed
from paycore.ops.endpoints import INSTANCE_HEADER
from paycore.payments.providers.registry import breakers_for, build_registry
from paycore.worker.assembly import assembled_worker

log = get_logger(__name__)


class AddressInUse(Exception):
    """The host and port to serve on are taken (another paycore, or anything else)."""


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """Bind before anything else starts, so a taken port fails first and alone: no worker has
    run and no banner has claimed the address when the process says it cannot serve."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(f"{host}:{port} is already in use") from None
        raise
    return sock


# Each process opens its own pool (PAYCORE_DATABASE_POOL_SIZE + MAX_OVERFLOW connections): a
# default that followed a 64-core host would pass PostgreSQL's max_connections (100).
MAX_DEFAULT_WORKERS = 4


def default_workers(settings: Settings, cpu_count: int | None = None) -> int:
    """`paycore serve` without `--workers`: one process per core where several are safe, else 1.

    One process stays the default when several would break a promise:
    - SQLite: one writer at a time per file. Processes would wait on each other's file lock
      (`database is locked`) instead of the in-process write queue, and no invalidation channel
      reaches another process (cached keys and standing would be trusted only 1 s anyway);
    - a drain on SIGTERM (PAYCORE_SHUTDOWN_DRAIN_SECONDS): only a single process handles the
      signal itself; with several, uvicorn's supervisor does and there is no drain;
    - rate limits kept in memory (no Redis): each process would count on its own, so every
      limit (sign-in attempts too) would be multiplied by the number of processes.
    """
    if settings.is_sqlite or settings.shutdown_drain_seconds > 0:
        return 1
    if settings.rate_limit_enabled and settings.redis_url is None:
        return 1
    return max(1, min(cpu_count or os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def url_of(host: str, port: int) -> str:
    """The URL a local client reaches a server bound to `host`:`port` at."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:  # 0.0.0.0 or ::, reachable here through the loopback
        return f"http://127.0.0.1:{port}" if address.version == 4 else f"http://[::1]:{port}"
    return f"http://{host}:{port}" if address.version == 4 else f"http://[{host}]:{port}"


def following_the_bound_address(settings: Settings, host: str, port: int) -> Settings:
    """Without PAYCORE_PUBLIC_URL, customers and the sandbox's webhooks are sent where this server
    actually listens; a URL the operator set is kept as it is (a proxy may sit in front)."""
    if "public_url" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"public_url": url_of(host, port)})


async def public_url_reaches_us(public_url: str, instance: str, *, within_seconds: float = 3.0) -> str | None:
    """None when `public_url` answers as this very process; otherwise why not, in words."""
    try:
        async with httpx.AsyncClient(timeout=within_seconds) as client:
            response = await client.get(f"{public_url}/health")
    except httpx.HTTPError as exc:
        return f"{public_url}/health could not be reached ({type(exc).__name__})"
    if response.headers.get(INSTANCE_HEADER) != instance:
        return f"{public_url}/health is answered by another server, not this one"
    return None


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion on uvloop when it is installed (it is, on Linux and macOS)."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - platforms without uvloop
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are handled by `_on_signals`


def _on_signals(
    stop: asyncio.Event,
    server: uvicorn.Server | None,
    *,
    app: FastAPI | None = None,
    drain_seconds: float = 0,
) -> None:
    """SIGTERM/SIGINT: `/ready` turns 503 at once (the app's `shutting_down`), the server keeps
    serving for `drain_seconds` so a load balancer sees it and sends no new requests, then stops
    accepting and finishes what is in flight. A second signal exits at once."""
    loop = asyncio.get_running_loop()

    def exit_server() -> None:
        if server is not None:
            server.should_exit = True

    def request_stop(sig: signal.Signals) -> None:
        if stop.is_set() and server is not None:
            log.warning("forced_exit", signal=sig.name)
            server.force_exit = True
            server.should_exit = True
            return
        log.info("stop_requested", signal=sig.name, drain_seconds=drain_seconds)
        stop.set()
        if app is not None:
            app.state.shutting_down = True
        if drain_seconds > 0 and server is not None:
            loop.call_later(drain_seconds, exit_server)
        else:
            exit_server()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop, sig)


# uvicorn with httptools and uvloop. Granian 2.8.9 (ASGI, uvloop, one worker) was measured
# against it on the same app (issue 13): no less server CPU per request on GET /health or an
# authenticated read, so uvicorn stays (figures in the commit that added this comment).
def uvicorn_config(
    app: FastAPI | str, settings: Settings, *, host: str, port: int, workers: int = 1
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=isinstance(app, str),
        log_config=None,  # paycore.logging owns logging
        access_log=False,  # RequestContextMiddleware writes the access log
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
        # The client address (rate limits, audit) comes from X-Forwarded-For only when the
        # connection is from a proxy the operator named; anyone else could forge it.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


@asynccontextmanager
async def quiet_server(app: FastAPI, settings: Settings, *, port: int) -> AsyncIterator[None]:
    """Serve `app` on 127.0.0.1:`port` for the length of the block (the demo's own server)."""
    server = _Server(uvicorn_config(app, settings, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # re-raises why it could not start
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def serve_api(
    app: FastAPI, settings: Settings, *, host: str, port: int, sockets: list[socket.socket] | None = None
) -> None:
    stop = asyncio.Event()
    server = _Server(uvicorn_config(app, settings, host=host, port=port))
    _on_signals(stop, server, app=app, drain_seconds=settings.shutdown_drain_seconds)
    await server.serve(sockets=sockets)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    _on_signals(stop, None)
    warn_if_private_targets_allowed(settings)  # a worker alone has no app start-up to say it
    database = Database(create_engine(settings))
    breakers = breakers_for(settings)
    try:
        async with assembled_worker(
            settings, database, build_registry(settings, database, breakers), breakers
        ) as worker:
            await worker.run(stop)
    finally:
        await database.dispose()


async def warn_unless_public_url_reaches_us(app: FastAPI, settings: Settings) -> None:
    """A PAYCORE_PUBLIC_URL that leads elsewhere sends customers and the sandbox's webhooks to
    the wrong server: say so loudly once the server listens."""
    reason = await public_url_reaches_us(settings.public_url, app.state.instance_id)
    if reason is not None:
        log.warning(
            "public_url_does_not_reach_this_server",
            public_url=settings.public_url,
            reason=reason,
            consequence="payment pages and sandbox webhooks will go to the wrong place",
        )


async def run_api_and_worker(
    app: FastAPI,
    settings: Settings,
    *,
    host: str,
    port: int,
    sockets: list[socket.socket] | None = None,
) -> None:
    """`paycore run`: one process, one event loop, one database pool and one set of breakers."""
    stop = asyncio.Event()
    server = _Server(uvicorn_config(app, settings, host=host, port=port))
    _on_signals(stop, server, app=app, drain_seconds=settings.shutdown_drain_seconds)
    database = Database(create_engine(settings))
    registry = registry_for(app, database)
    app.state.database = database
    app.state.providers = registry
    try:
        async with assembled_worker(settings, database, registry, app.state.breakers) as worker:
            worker_task = asyncio.create_task(worker.run(stop))
            probe: asyncio.Task[None] | None = None
            if "public_url" in settings.model_fields_set:
                probe = asyncio.create_task(_probe_when_started(server, app, settings))
            try:
                await server.serve(sockets=sockets)
            finally:
                stop.set()
                if probe is not None:
                    probe.cancel()
                await worker_task
    finally:
        await database.dispose()


async def _probe_when_started(server: uvicorn.Server, app: FastAPI, settings: Settings) -> None:
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.05)
    await warn_unless_public_url_reaches_us(app, settings)
