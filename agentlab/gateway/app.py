"""The FastAPI application: runs, their events, approvals, the audit log, SLOs and metrics.

``build_gateway_app(...)`` assembles it; ``agentlab serve`` serves it with uvicorn. Every
endpoint but ``/healthz`` and ``/metrics`` needs ``Authorization: Bearer <token>`` (see
``auth.py`` for the scopes). Errors come back as ``{"code", "message", "hint"}``: 401 without
a valid token, 403 when the token or its actor may not do it (nothing is recorded), 404 for a
run or approval the caller cannot see, 409 when the state moved on, 422 naming the wrong
field. The OpenAPI spec is at ``/openapi.json`` and in ``docs/openapi.json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agentlab._version import __version__
from agentlab.agents import StopConditions
from agentlab.core.clock import Clock
from agentlab.core.errors import AgentlabError, BackendError, ConfigError, StoreError
from agentlab.core.events import Event
from agentlab.gateway.auth import (
    APPROVALS_DECIDE,
    AUDIT_READ,
    RUNS_READ,
    RUNS_SUBMIT,
    Caller,
    TokenBook,
)
from agentlab.gateway.schemas import (
    RUN_ID_PATTERN,
    STEP_ID_PATTERN,
    ApprovalAnswered,
    ApprovalView,
    AuditView,
    ChainView,
    Decision,
    ErrorBody,
    EventPage,
    Health,
    Rejection,
    RunAccepted,
    RunRequest,
    RunStatus,
    RunView,
    SLOView,
    StepView,
    ValidationErrorBody,
)
from agentlab.gateway.service import Gateway, GatewayError, finish_reason, when
from agentlab.ops import AgentMetrics, SLOSet, default_slos
from agentlab.policy import Policy, default_policy
from agentlab.store import EventStore, RunState, project_run
from agentlab.store.audit import AuditLog
from agentlab.store.conversation import ConversationLog

MAX_WAIT_S = 30.0
"""The longest a long-poll for events waits."""
STREAM_HEARTBEAT_S = 15.0
STREAM_MAX_S = 3600.0
POLL_S = 0.1

RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The run's id.")]
ApprovalIdPath = Annotated[
    str, Path(pattern=STEP_ID_PATTERN, description="The waiting step's id, as GET /approvals.")
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No bearer token, or one nobody issued."},
    403: {"model": ErrorBody, "description": "The token or its actor may not do this."},
    422: {"model": ValidationErrorBody, "description": "A field is wrong; the message names it."},
}

_bearer = HTTPBearer(auto_error=False, description="A token from `agentlab tokens issue`.")


def build_gateway_app(
    *,
    store: EventStore,
    audit: AuditLog,
    tokens: TokenBook,
    policy: Policy | None = None,
    slos: SLOSet | None = None,
    metrics: AgentMetrics | None = None,
    checkpoint_url: str = "memory",
    checkpoint_key: bytes | None = None,
    world_url: str | None = None,
    model_base_url: str | None = None,
    model_api_key_env: str = "OPENAI_API_KEY",
    default_model: str = "sim-large",
    conversation: ConversationLog | None = None,
    clock: Clock | None = None,
    limits: StopConditions | None = None,
    sim_time_scale: float = 0.0,
    max_concurrent_runs: int = 8,
    on_shutdown: Sequence[Callable[[], object]] = (),
) -> FastAPI:
    """The gateway as a FastAPI app; ``app.state.gateway`` is its :class:`Gateway`.

    The store, audit log and conversation log stay the caller's to close. The shared parts
    (world, model clients, checkpointer) open at start-up or the first request, and close at
    shutdown. Arguments are :class:`Gateway`'s, plus ``tokens`` (who may call) and
    ``on_shutdown``: called in order once the runs have stopped (``agentlab serve`` flushes
    its traces there: uvicorn ends the process on SIGTERM right after the app's shutdown).
    """
    gateway = Gateway(
        store=store,
        audit=audit,
        policy=policy or default_policy(),
        slos=slos if slos is not None else default_slos(),
        metrics=metrics or AgentMetrics(),
        checkpoint_url=checkpoint_url,
        checkpoint_key=checkpoint_key,
        world_url=world_url,
        model_base_url=model_base_url,
        model_api_key_env=model_api_key_env,
        default_model=default_model,
        conversation=conversation,
        clock=clock,
        limits=limits,
        sim_time_scale=sim_time_scale,
        max_concurrent_runs=max_concurrent_runs,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.aclose()
            for callback in on_shutdown:
                callback()

    app = FastAPI(
        title="agentlab gateway",
        version=__version__,
        description=(
            "Submit agent runs for an actor, follow their events, answer the approvals that "
            "wait for a person (the human step of two-phase commit), and query the audit log. "
            "Bearer tokens carry an actor and scopes; see docs/gateway.md."
        ),
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.tokens = tokens
    _install_error_handlers(app)
    app.include_router(_open_routes())
    app.include_router(_routes(), responses=_ERRORS)
    return app


# -- authentication ----------------------------------------------------------------------------


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise GatewayError(
            401,
            "UNAUTHENTICATED",
            "this endpoint needs a bearer token",
            hint="send 'Authorization: Bearer <token>'; issue one with `agentlab tokens issue`",
        )
    caller = request.app.state.tokens.authenticate(credentials.credentials)
    if caller is None:
        raise GatewayError(
            401,
            "UNAUTHENTICATED",
            "the bearer token is not one this gateway issued (or it was revoked)",
            hint="check the token; `agentlab tokens list` shows which exist, by name",
        )
    return caller


def _needs(scope: str) -> Any:
    async def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if not caller.may(scope):
            raise GatewayError(
                403,
                "FORBIDDEN",
                f"token {caller.token_name!r} lacks the scope {scope}",
                hint=f"issue a token with --scope {scope}; nothing was done",
            )
        return caller

    return Depends(check)


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


GatewayDep = Annotated[Gateway, Depends(_gateway)]


# -- errors ------------------------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def refused(_: Request, exc: GatewayError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = ErrorBody(code=exc.code, message=exc.message, hint=exc.hint)
        return JSONResponse(body.model_dump(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(request)'}: {e['msg']}" for e in errors
        )
        body = ValidationErrorBody(
            code="INVALID_REQUEST",
            message=fields or "the request is malformed",
            hint="see the request schema at /docs or in docs/openapi.json",
            detail=errors,  # type: ignore[arg-type]
        )
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(AgentlabError)
    async def failed(_: Request, exc: AgentlabError) -> JSONResponse:
        status = 503 if isinstance(exc, BackendError | StoreError) else 422
        if isinstance(exc, ConfigError):
            status = 422
        body = ErrorBody(code=exc.code, message=exc.message, hint=exc.hint)
        return JSONResponse(body.model_dump(), status_code=status)


# -- routes ------------------------------------------------------------------------------------


def _open_routes() -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> Health:
        """The gateway is up."""
        return Health(status="ok", version=__version__)

    @router.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics(gateway: GatewayDep) -> Response:
        """The KPIs and SLOs in Prometheus' text format (docs/operations.md)."""
        body, content_type = gateway.metrics.exposition()
        return Response(body, media_type=content_type)

    return router


def _routes() -> APIRouter:
    router = APIRouter()

    @router.post("/runs", status_code=202, tags=["runs"])
    async def submit_run(
        body: RunRequest, gateway: GatewayDep, caller: Annotated[Caller, _needs(RUNS_SUBMIT)]
    ) -> RunAccepted:
        """Start a run of ``task`` for an actor in a use case; it works in the background.

        Follow it with ``GET /runs/{run_id}`` or its events. When an SLO's error budget is
        spent for the use case, the use case's fallbacks take the run instead of the agent,
        and ``degraded_by`` says which SLO.
        """
        submission = await gateway.submit(gateway.validate(body, caller))
        run_id = submission.run_id
        status: RunStatus = "running" if gateway.store.read(run_id) else "queued"
        return RunAccepted(
            run_id=run_id,
            status=status,
            degraded_by=submission.degraded_by[0].slo.name if submission.degraded_by else None,
            links={
                "run": f"/runs/{run_id}",
                "events": f"/runs/{run_id}/events",
                "stream": f"/runs/{run_id}/events/stream",
            },
        )

    @router.get("/runs", tags=["runs"])
    async def list_runs(
        gateway: GatewayDep,
        caller: Annotated[Caller, _needs(RUNS_READ)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[RunView]:
        """The latest runs the caller may see, newest first."""
        views: list[RunView] = []
        for run_id in reversed(gateway.store.run_ids()):
            events = gateway.store.read(run_id)
            if events and gateway.may_see(caller, events[0].run.actor):  # type: ignore[union-attr]
                views.append(_run_view(gateway, events))
                if len(views) >= limit:
                    break
        return views

    @router.get("/runs/{run_id}", tags=["runs"], responses={404: {"model": ErrorBody}})
    async def get_run(
        run_id: RunIdPath, gateway: GatewayDep, caller: Annotated[Caller, _needs(RUNS_READ)]
    ) -> RunView:
        """Where a run stands: status, steps, answer, cost, and why it ended or waits."""
        return _visible_run(gateway, caller, run_id)

    @router.get("/runs/{run_id}/events", tags=["runs"], responses={404: {"model": ErrorBody}})
    async def run_events(
        run_id: RunIdPath,
        gateway: GatewayDep,
        caller: Annotated[Caller, _needs(RUNS_READ)],
        after: Annotated[int, Query(ge=-1, description="Events with seq above this.")] = -1,
        wait: Annotated[
            float,
            Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for a new event (long-poll)."),
        ] = 0.0,
    ) -> EventPage:
        """The run's events after ``after``; with ``wait``, hold on until one comes or it ends."""
        view = _visible_run(gateway, caller, run_id)
        deadline = time.monotonic() + wait
        while True:
            events = gateway.store.read(run_id, after_seq=after)  # type: ignore[arg-type]
            if events or view.status in _ENDED or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_S)
            view = _visible_run(gateway, caller, run_id)
        view = _visible_run(gateway, caller, run_id) if events else view
        return EventPage(
            run_id=run_id,
            status=view.status,
            events=gateway.masked(events),
            next_after=events[-1].seq if events else after,
            is_finished=view.status in _ENDED,
        )

    @router.get(
        "/runs/{run_id}/events/stream",
        tags=["runs"],
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
            404: {"model": ErrorBody},
        },
    )
    async def stream_events(
        run_id: RunIdPath,
        gateway: GatewayDep,
        caller: Annotated[Caller, _needs(RUNS_READ)],
        after: Annotated[int, Query(ge=-1, description="Events with seq above this.")] = -1,
        last_event_id: Annotated[
            int | None, Header(ge=-1, description="Resume after this seq (set by browsers).")
        ] = None,
    ) -> StreamingResponse:
        """The run's events as server-sent events (``id`` = seq, ``event`` = kind) until it ends.

        A last ``end`` event carries the run's final status. Comments keep the connection
        alive every 15 s; reconnecting with ``Last-Event-ID`` carries on where it broke.
        """
        _visible_run(gateway, caller, run_id)
        start = last_event_id if last_event_id is not None else after
        return StreamingResponse(
            _event_stream(gateway, caller, run_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/approvals", tags=["approvals"])
    async def list_approvals(
        gateway: GatewayDep, caller: Annotated[Caller, _needs(APPROVALS_DECIDE)]
    ) -> list[ApprovalView]:
        """The commits waiting for a person that the caller may decide, oldest run first."""
        return [
            ApprovalView(
                approval_id=entry.step.step_id,
                run_id=state.run.run_id,
                step_id=entry.step.step_id,
                actor=state.run.actor,
                task=state.run.task,
                tool=entry.step.tool,
                scope=gateway.tool_scope(entry.step.tool),
                arguments=gateway.dlp.apply(entry.step.arguments, "logs").value,
                preview=gateway.dlp.apply(entry.dry_run_diff, "logs").value,
            )
            for state, entry in gateway.pending()
            if gateway.may_decide(caller, entry.step.tool, requester=state.run.actor)
        ]

    @router.post(
        "/approvals/{approval_id}/approve",
        status_code=202,
        tags=["approvals"],
        responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    )
    async def approve(
        approval_id: ApprovalIdPath,
        gateway: GatewayDep,
        caller: Annotated[Caller, _needs(APPROVALS_DECIDE)],
        body: Decision | None = None,
    ) -> ApprovalAnswered:
        """Approve a waiting commit; the run resumes in the background and commits it once."""
        decision = body or Decision()
        run_id, status = await gateway.decide(
            approval_id,
            caller,
            is_approved=True,
            reason=decision.reason,
            edited_arguments=decision.edited_arguments,
        )
        return ApprovalAnswered(
            approval_id=approval_id, run_id=run_id, decision="approved", status=status
        )

    @router.post(
        "/approvals/{approval_id}/reject",
        status_code=202,
        tags=["approvals"],
        responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    )
    async def reject(
        approval_id: ApprovalIdPath,
        body: Rejection,
        gateway: GatewayDep,
        caller: Annotated[Caller, _needs(APPROVALS_DECIDE)],
    ) -> ApprovalAnswered:
        """Reject a waiting commit; it never runs, and the run goes on with the reason."""
        run_id, status = await gateway.decide(
            approval_id, caller, is_approved=False, reason=body.reason
        )
        return ApprovalAnswered(
            approval_id=approval_id, run_id=run_id, decision="rejected", status=status
        )

    @router.get("/audit", tags=["audit"])
    async def audit_records(
        gateway: GatewayDep,
        caller: Annotated[Caller, _needs(AUDIT_READ)],
        run_id: Annotated[str | None, Query(pattern=RUN_ID_PATTERN)] = None,
        after_seq: Annotated[int, Query(ge=-1)] = -1,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> AuditView:
        """Decision points after ``after_seq`` (of one run, if given), oldest first."""
        records = gateway.audit.read(after_seq=after_seq, run_id=run_id)[:limit]
        head_seq, head_hash = gateway.audit.head()
        return AuditView(
            records=[json.loads(r.model_dump_json()) for r in records],
            head_seq=head_seq,
            head_hash=head_hash,
            next_after=records[-1].seq if records else after_seq,
        )

    @router.get("/audit/verify", tags=["audit"])
    async def audit_verify(
        gateway: GatewayDep, caller: Annotated[Caller, _needs(AUDIT_READ)]
    ) -> ChainView:
        """Walk the audit log's hash chain; ``first_bad_seq`` names where it breaks."""
        check = gateway.audit.verify()
        return ChainView(
            is_intact=check.is_intact,
            checked=check.checked,
            first_bad_seq=check.first_bad_seq,
            problem=check.problem,
            head_hash=check.head_hash,
        )

    @router.get("/slos", tags=["ops"])
    async def slos(
        gateway: GatewayDep, caller: Annotated[Caller, _needs(RUNS_READ)]
    ) -> list[SLOView]:
        """Each SLO's value, error budget and burn rate over the runs of its window."""
        return [
            SLOView(
                use_case=s.slo.use_case or "*",
                slo=s.slo.name,
                kpi=s.slo.kpi,
                target=s.slo.target,
                objective=s.slo.objective,
                value=s.value,
                runs=s.runs,
                budget_spent=s.budget_spent,
                error_budget_remaining=s.error_budget_remaining,
                burn_rate=s.burn_rate,
                is_exhausted=s.is_exhausted,
                summary=s.summary(),
            )
            for s in gateway.slo_statuses()
        ]

    return router


_ENDED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


def _visible_run(gateway: Gateway, caller: Caller, run_id: str) -> RunView:
    """The run, if the caller may see it; a 404 otherwise (its existence is not told)."""
    events = gateway.store.read(run_id)  # type: ignore[arg-type]
    if events:
        if gateway.may_see(caller, events[0].run.actor):  # type: ignore[union-attr]
            return _run_view(gateway, events)
    elif (accepted := gateway.queued(run_id)) is not None and gateway.may_see(
        caller, accepted[0].actor
    ):
        submission, where = accepted
        is_queued = where == "queued"
        return RunView(
            run_id=run_id,
            status="queued" if is_queued else "failed",
            task=submission.task,
            actor=submission.actor,
            config=submission.config,
            model=submission.model,
            use_case=submission.use_case,
            started_at=None,
            finished_at=None,
            answer=None,
            reason="waiting for a free slot" if is_queued else where,
            cost_usd=0.0,
            model_calls=0,
            steps=[],
            last_seq=-1,
        )
    raise GatewayError(
        404,
        "NOT_FOUND",
        f"no run {run_id} that this token may see",
        hint="list yours with GET /runs; another actor's runs need runs:read_all",
    )


def _run_view(gateway: Gateway, events: list[Event]) -> RunView:
    state = project_run(events)
    run = state.run
    waiting = [s for s in state.steps.values() if _is_waiting(state, s.status, s.is_preview_only)]
    status: RunStatus
    if state.is_finished:
        status = state.status  # type: ignore[assignment]
        reason = finish_reason(events)
    elif waiting:
        status = "awaiting_approval"
        reason = ", ".join(f"{s.step.tool} ({s.step.step_id}) waits for a person" for s in waiting)
    else:
        status, reason = "running", ""
    started_at, finished_at = when(events)
    return RunView(
        run_id=run.run_id,
        status=status,
        task=run.task,
        actor=run.actor,
        config=run.config,
        model=run.model,
        use_case=gateway.use_case_of(run.run_id),
        started_at=started_at,
        finished_at=finished_at,
        answer=state.answer,
        reason=reason,
        cost_usd=sum(call.cost_usd for call in state.model_calls),
        model_calls=len(state.model_calls),
        steps=[
            StepView(
                step_id=s.step.step_id,
                tool=s.step.tool,
                status=s.status,
                idempotency_key=s.step.idempotency_key,
                is_waiting=s in waiting,
            )
            for s in state.steps.values()
        ],
        last_seq=state.last_seq,
        degraded_by=gateway.degraded_by(run.run_id),
    )


def _is_waiting(state: RunState, status: str, is_preview_only: bool) -> bool:
    return not state.is_finished and status == "dry_run" and not is_preview_only


async def _event_stream(
    gateway: Gateway, caller: Caller, run_id: str, after: int
) -> AsyncIterator[str]:
    started = last_beat = time.monotonic()
    while True:
        for event in gateway.masked(gateway.store.read(run_id, after_seq=after)):  # type: ignore[arg-type]
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"
            after = event.seq
        view = _visible_run(gateway, caller, run_id)
        now = time.monotonic()
        if view.status in _ENDED or now - started > STREAM_MAX_S:
            end = json.dumps({"status": view.status, "last_seq": view.last_seq})
            yield f"event: end\ndata: {end}\n\n"
            return
        if now - last_beat >= STREAM_HEARTBEAT_S:
            yield ": keep-alive\n\n"
            last_beat = now
        await asyncio.sleep(POLL_S * 2)
