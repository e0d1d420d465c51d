"""serve, worker, run: the long-running commands."""

from __future__ import annotations

import os
import socket
import tempfile
from typing import Annotated

import typer
import uvicorn

from paycore.app import create_app
from paycore.cli.common import console, fail, settings_or_exit
from paycore.config import ENV_PREFIX, Settings
from paycore.logging import cache_loggers
from paycore.ops.metrics import MULTIPROC_ENV
from paycore.serving import (
    AddressInUse,
    bind_listening_socket,
    default_workers,
    following_the_bound_address,
    run_api_and_worker,
    run_event_loop,
    run_worker,
    serve_api,
    url_of,
)

HostOption = Annotated[str | None, typer.Option(help="Interface to bind (default PAYCORE_HTTP_HOST).")]
PortOption = Annotated[int | None, typer.Option(help="Port to bind (default PAYCORE_HTTP_PORT).")]


def _announce(host: str, port: int, settings: Settings, *, with_worker: bool) -> None:
    base = url_of(host, port)
    console.print(f"[bold]paycore[/] {'API + worker' if with_worker else 'API'} on [link={base}]{base}[/]")
    console.print(
        f"  console {base}/admin/login\n  docs    {base}/docs\n  health  {base}/health\n"
        f"  ready   {base}/ready\n  metrics {base}/metrics"
    )
    if settings.public_url != base:
        console.print(f"  customers and providers reach it at {settings.public_url} (PAYCORE_PUBLIC_URL)")


def _bind_or_exit(host: str, port: int) -> socket.socket:
    try:
        return bind_listening_socket(host, port)
    except AddressInUse:
        fail(
            f"cannot serve on {host}:{port}: the port is already in use (another paycore?); "
            "stop it, or choose another port with --port or PAYCORE_HTTP_PORT"
        )
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")


def _address(settings: Settings, host: str | None, port: int | None) -> tuple[str, int, Settings]:
    host, port = host or settings.http_host, port or settings.http_port
    return host, port, following_the_bound_address(settings, host, port)


def serve(
    host: HostOption = None,
    port: PortOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Server processes on this host (default: one per core, at most 4, on PostgreSQL "
            "with Redis and no drain; otherwise 1).",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (no background worker; run `paycore worker` beside it)."""
    host, port, settings = _address(settings_or_exit(), host, port)
    workers = workers or default_workers(settings)
    listening = _bind_or_exit(host, port)
    _announce(host, port, settings, with_worker=False)
    if workers == 1:
        cache_loggers()
        run_event_loop(serve_api(create_app(settings), settings, host=host, port=port, sockets=[listening]))
        return
    listening.close()  # uvicorn's supervisor binds for its processes; the port was free just now
    # The processes build their settings from the environment: hand them the same public URL.
    os.environ[f"{ENV_PREFIX}PUBLIC_URL"] = settings.public_url
    # Each process keeps its own counters; the multiprocess directory lets a scrape of any one
    # of them report the sum.
    os.environ.setdefault(MULTIPROC_ENV, tempfile.mkdtemp(prefix="paycore-metrics-"))
    uvicorn.run(
        "paycore.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


def worker() -> None:
    """Run the background worker (periodic jobs); stops cleanly on SIGTERM or Ctrl-C."""
    settings = settings_or_exit()
    console.print("[bold]paycore[/] worker running; Ctrl-C to stop")
    run_event_loop(run_worker(settings))


def run(host: HostOption = None, port: PortOption = None) -> None:
    """Run the API and the worker in one process (the embedded default that `make run` starts)."""
    host, port, settings = _address(settings_or_exit(), host, port)
    listening = _bind_or_exit(host, port)
    _announce(host, port, settings, with_worker=True)
    cache_loggers()
    run_event_loop(
        run_api_and_worker(create_app(settings), settings, host=host, port=port, sockets=[listening])
    )
