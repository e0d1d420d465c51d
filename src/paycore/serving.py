"""Running the API server and the worker in this process, with a graceful stop on SIGINT/SIGTERM.

uvicorn's own signal capture re-raises the signal after shutdown (ending the process with 130/143
and cutting short anything else on the loop); paycore owns the signals instead, stops the server
and the worker together, and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from paycore.circuit import Breakers
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.logging import get_logger
from paycore.merchant_webhooks.targets import warn_if_private_targets_allowed
from paycore.payments.providers.registry import breakers_for, build_registry
from paycore.worker.assembly import assembled_worker

log = get_logger(__name__)


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


async def serve_api(app: FastAPI, settings: Settings, *, host: str, port: int) -> None:
    stop = asyncio.Event()
    server = _Server(uvicorn_config(app, settings, host=host, port=port))
    _on_signals(stop, server, app=app, drain_seconds=settings.shutdown_drain_seconds)
    await server.serve()


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


async def run_api_and_worker(app: FastAPI, settings: Settings, *, host: str, port: int) -> None:
    """`paycore run`: one process, one event loop, one database pool and one set of breakers."""
    stop = asyncio.Event()
    server = _Server(uvicorn_config(app, settings, host=host, port=port))
    _on_signals(stop, server, app=app, drain_seconds=settings.shutdown_drain_seconds)
    database = Database(create_engine(settings))
    breakers: Breakers = app.state.breakers
    registry = build_registry(settings, database, breakers)
    app.state.database = database
    app.state.providers = registry
    try:
        async with assembled_worker(settings, database, registry, breakers) as worker:
            worker_task = asyncio.create_task(worker.run(stop))
            try:
                await server.serve()
            finally:
                stop.set()
                await worker_task
    finally:
        await database.dispose()
