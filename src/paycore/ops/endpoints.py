from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from paycore.auth.dependencies import OpsKeyDep
from paycore.checkout.durability import LIVE_PAYMENTS_NEED_POSTGRES
from paycore.dependencies import DatabaseDep, ReadSessionDep, SettingsDep
from paycore.errors import ErrorType, error_body
from paycore.ops.metrics import render_latest
from paycore.ops.readiness import run_readiness_checks
from paycore.ops.schemas import CheckOut, HealthOut, NotReadyOut, OpsSummaryOut, ReadyOut
from paycore.ops.summary import tenant_summary

router = APIRouter(tags=["ops"])


# Answered by /health, so a start-up probe can tell this process from another one on the same URL.
INSTANCE_HEADER = "X-Paycore-Instance"


@router.get("/health", summary="Process liveness (no I/O)")
async def health(request: Request, response: Response) -> HealthOut:
    """Answers 200 while the process runs; touches nothing else. For liveness probes."""
    response.headers[INSTANCE_HEADER] = request.app.state.instance_id
    return HealthOut()


@router.get(
    "/ready",
    summary="Readiness: database, migrations, Redis",
    response_model=ReadyOut,
    response_model_exclude_none=True,
    responses={503: {"model": NotReadyOut, "description": "Not ready; the checks say why."}},
)
async def ready(request: Request, database: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    """200 when the database answers, its schema is at the migrations' head and Redis (when set)
    answers; 503 in the error envelope with every check otherwise. For load balancers and readiness
    probes."""
    checks = await run_readiness_checks(
        database=database,
        redis=request.app.state.redis,
        shutting_down=request.app.state.shutting_down,
        timeout_seconds=settings.ready_timeout_seconds,
    )
    by_name = {check.name: CheckOut(ok=check.ok, detail=check.detail) for check in checks}
    failing = [check for check in checks if not check.ok]
    if not failing:
        # Ready for test mode, but a production deployment must not look healthy for money.
        on_sqlite_in_production = settings.is_production and database.dialect_name == "sqlite"
        ready_body = ReadyOut(
            checks=by_name, warnings=[LIVE_PAYMENTS_NEED_POSTGRES] if on_sqlite_in_production else None
        )
        return JSONResponse(ready_body.model_dump(mode="json", exclude_none=True))
    body = error_body(
        error_type=ErrorType.API,
        code="not_ready",
        message="; ".join(f"{check.name}: {check.detail}" for check in failing),
    )
    not_ready = NotReadyOut.model_validate({**body, "checks": by_name})
    return JSONResponse(not_ready.model_dump(mode="json", exclude_unset=True), status_code=503)


@router.get(
    "/ops/summary", summary="Operator summary for the caller's tenant (secret key with the ops scope)"
)
async def ops_summary(
    request: Request, context: OpsKeyDep, session: ReadSessionDep, database: DatabaseDep
) -> OpsSummaryOut:
    """What an operator looks at first, for the caller's tenant and mode only: orders by status, the
    last day's payments, provider events by result, the outbox, fulfillments needing attention,
    circuit breakers, migrations. Needs a secret key with the `ops` scope."""
    return await tenant_summary(session, context, database=database, breakers=request.app.state.breakers)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    payload, content_type = render_latest()
    return Response(payload, media_type=content_type)
