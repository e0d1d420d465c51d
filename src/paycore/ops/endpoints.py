from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from paycore.auth.dependencies import OpsKeyDep
from paycore.checkout.durability import LIVE_PAYMENTS_NEED_POSTGRES
from paycore.dependencies import DatabaseDep, ReadSessionDep, SettingsDep
from paycore.errors import ErrorType, error_body
from paycore.ops.metrics import render_latest
from paycore.ops.readiness import run_readiness_checks
from paycore.ops.summary import tenant_summary

router = APIRouter(tags=["ops"])


# Answered by /health, so a start-up probe can tell this process from another one on the same URL.
INSTANCE_HEADER = "X-Paycore-Instance"


@router.get("/health", summary="Process liveness (no I/O)")
async def health(request: Request, response: Response) -> dict[str, str]:
    response.headers[INSTANCE_HEADER] = request.app.state.instance_id
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: database, migrations, Redis",
    responses={503: {"description": "Not ready; the checks say why."}},
)
async def ready(request: Request, database: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    checks = await run_readiness_checks(
        database=database,
        redis=request.app.state.redis,
        shutting_down=request.app.state.shutting_down,
        timeout_seconds=settings.ready_timeout_seconds,
    )
    by_name: dict[str, Any] = {check.name: {"ok": check.ok, "detail": check.detail} for check in checks}
    failing = [check for check in checks if not check.ok]
    if not failing:
        ready_body: dict[str, Any] = {"status": "ready", "checks": by_name}
        if settings.is_production and database.dialect_name == "sqlite":
            # Ready for test mode, but a production deployment must not look healthy for money.
            ready_body["warnings"] = [LIVE_PAYMENTS_NEED_POSTGRES]
        return JSONResponse(ready_body)
    body = error_body(
        error_type=ErrorType.API,
        code="not_ready",
        message="; ".join(f"{check.name}: {check.detail}" for check in failing),
    )
    return JSONResponse({**body, "checks": by_name}, status_code=503)


@router.get(
    "/ops/summary", summary="Operator summary for the caller's tenant (secret key with the ops scope)"
)
async def ops_summary(
    request: Request, context: OpsKeyDep, session: ReadSessionDep, database: DatabaseDep
) -> dict[str, Any]:
    return await tenant_summary(session, context, database=database, breakers=request.app.state.breakers)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    payload, content_type = render_latest()
    return Response(payload, media_type=content_type)
