"""Listener track requests: accepted and charged atomically, generated in
their own Dagster partition, followed to air, refunded exactly once if they
fail.

``create_request`` validates and moderates the prompt, then, holding the
user's billing-account lock, checks the plan's throttles and reserves a
request of quota or one credit in the same transaction that inserts the
request. ``RequestTracker`` (a task of each API worker) launches the run
and moves each request along by what Dagster and the lakehouse say; every
transition is a compare-and-set on the request's status, so two workers
never enqueue, refund or announce one request twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from serving.billing.ledger import PENDING_STATES, add_credits, lock_account
from serving.billing.plans import CREDIT_GENERATORS
from serving.db.models import TrackRequest, User
from serving.db.session import Database
from serving.db.types import utcnow, uuid7
from serving.exceptions import NotFoundError, ServingError
from serving.schemas.pipeline import PipelineRunCreate
from serving.schemas.requests import TrackRequestCreate, TrackRequestPublic
from serving.services.billing import decide
from serving.services.dagster import PipelineLauncher
from serving.services.outbox import record_event
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import StationState

log = logging.getLogger("serving.requests")

#: Dagster run states of a run that has ended.
RUN_FAILED = frozenset({"FAILURE", "CANCELED"})
RUN_ENDED = RUN_FAILED | {"SUCCESS"}
#: A launch claimed this long ago and never recorded is taken for lost.
LAUNCH_CLAIM_S = 300.0
#: A request popped from the queue but never seen on air within its
#: duration plus this is taken for dropped by the streamer.
AIR_GRACE_S = 120.0

_URL = re.compile(
    r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|"
    r"ly|gg|tv|me|co|app|dev|xyz|info|biz|ru|cn|de|uk|fr)\b(?:/\S*)?"
)


class PromptRefusedError(ServingError):
    status_code = 422
    code = "prompt_refused"


class InvalidRequestError(ServingError):
    status_code = 422
    code = "invalid_request"


class GeneratorNotAllowedError(ServingError):
    status_code = 403
    code = "generator_not_allowed"


class PaymentRequiredError(ServingError):
    status_code = 402
    code = "payment_required"


class ThrottledError(ServingError):
    status_code = 429
    code = "request_throttled"


# -- validation -----------------------------------------------------------------------


def moderate(prompt: str, settings: Settings) -> None:
    """Refuse a prompt that is too long, names a blocked word, or carries a
    link (requests are read on air and shown in metadata)."""
    limit = settings.request_prompt_max_chars
    if len(prompt) > limit:
        raise PromptRefusedError(
            f"the prompt is {len(prompt)} characters; at most {limit} are allowed"
        )
    if _URL.search(prompt):
        raise PromptRefusedError("the prompt may not contain links or web addresses")
    words = set(re.findall(r"[\w'-]+", prompt.lower()))
    lowered = prompt.lower()
    for blocked in settings.request_block_list:
        term = blocked.strip().lower()
        if not term:
            continue
        hit = term in words if re.fullmatch(r"[\w'-]+", term) else term in lowered
        if hit:
            raise PromptRefusedError("the prompt contains a blocked term; rephrase it without it")


def validate_spec(body: TrackRequestCreate) -> str:
    """Check genre, bpm and duration as ``sonicforge generate`` does, with
    the backend that validates them (the procedural synthesizer's genres
    are the station's); returns the normalised genre."""
    from models.errors import ModelsError
    from models.generation.base import TrackSpec
    from models.generation.registry import create_backend

    try:
        backend = create_backend("procedural")
        (spec,) = backend.validate(
            [TrackSpec(genre=body.genre, bpm=body.bpm, mood=body.mood, prompt=body.prompt)],
            duration_s=body.duration_s,
        )
    except (ModelsError, ValueError) as exc:
        raise InvalidRequestError(str(exc)) from None
    return spec.genre


def public(req: TrackRequest) -> TrackRequestPublic:
    return TrackRequestPublic(
        request_id=req.id,
        status=req.status,  # type: ignore[arg-type]
        reason=req.reason,
        prompt=req.prompt,
        genre=req.genre,
        duration_s=req.duration_s,
        bpm=req.bpm,
        mood=req.mood,
        plan=req.plan,
        charge=req.charge,  # type: ignore[arg-type]
        paid=req.paid,
        generator=req.generator,
        batch_id=req.batch_id,
        run_id=None if (req.run_id or "").startswith("launching:") else req.run_id,
        track_id=req.track_id,
        expected_air_at=req.expected_air_at,
        aired_at=req.aired_at,
        refunded=req.refunded_at is not None,
        created_at=req.created_at,
        updated_at=req.updated_at,
    )


# -- accepting a request ----------------------------------------------------------------


def reserve_request(
    db: Database, settings: Settings, user_id: str, body: TrackRequestCreate, genre: str
) -> TrackRequest:
    """Insert the request and charge it, atomically, under the user's lock."""
    with db.session() as s:
        lock_account(s, user_id)
        now = utcnow()
        d = decide(s, user_id, settings, now=now)
        if not d.allowed:
            headers = (
                {"Retry-After": str(max(1, int(d.retry_after_s or 1)))} if d.status == 429 else {}
            )
            cls = ThrottledError if d.status == 429 else PaymentRequiredError
            raise cls(d.reason, headers=headers)
        plan = d.entitlement.plan
        if body.duration_s > plan.max_request_duration_s:
            raise InvalidRequestError(
                f"value {body.duration_s:g} for 'duration_s' is over {plan.name}'s limit: "
                f"requests may last at most {plan.max_request_duration_s:g} s"
            )
        paid = plan.paid or d.charge == "credit"
        allowed = CREDIT_GENERATORS if paid else plan.generators
        if body.generator is not None and body.generator not in allowed:
            from models.provenance import license_for

            lic = license_for(body.generator)
            why = (
                f"its license ({lic.spdx}) does not allow commercial use, and this request is paid"
                if paid and not lic.commercial_use
                else f"{plan.name} does not include it"
            )
            raise GeneratorNotAllowedError(
                f"generator {body.generator!r} cannot serve this request: {why}; allowed: "
                + ", ".join(allowed)
            )
        user = s.get(User, user_id)
        request_id = uuid7()
        req = TrackRequest(
            id=request_id,
            user_id=user_id,
            prompt=body.prompt,
            genre=genre,
            duration_s=float(body.duration_s),
            bpm=body.bpm,
            mood=body.mood,
            plan=plan.id,
            priority=plan.request_priority,
            charge=d.charge or "quota",
            paid=paid,
            generator=body.generator,
            show_name=bool(body.show_name and user is not None),
            status="queued",
            batch_id=f"req-{request_id}",
            created_at=now,
            updated_at=now,
        )
        s.add(req)
        if d.charge == "credit":
            add_credits(s, user_id, -1, kind="spend", ref=f"request:{request_id}:spend")
        record_event(
            s,
            "conversion",
            event="request_created",
            user_id=user_id,
            properties={
                "request_id": request_id,
                "plan": plan.id,
                "charge": req.charge,
                "genre": genre,
                "duration_s": req.duration_s,
            },
        )
        s.commit()
        return req


def read_request(db: Database, request_id: str, *, user_id: str | None) -> TrackRequest:
    with db.session() as s:
        req = s.get(TrackRequest, request_id)
        if req is None or (user_id is not None and req.user_id != user_id):
            raise NotFoundError(f"no request {request_id!r} of yours")
        return req


def list_requests(db: Database, user_id: str, *, limit: int) -> list[TrackRequest]:
    with db.session() as s:
        return list(
            s.scalars(
                select(TrackRequest)
                .where(TrackRequest.user_id == user_id)
                .order_by(TrackRequest.created_at.desc())
                .limit(limit)
            )
        )


# -- transitions (compare-and-set) -----------------------------------------------------


def _set(s: Session, req_id: str, expect: Iterable[str], **values: Any) -> bool:
    result = s.execute(
        update(TrackRequest)
        .where(TrackRequest.id == req_id, TrackRequest.status.in_(list(expect)))
        .values(updated_at=utcnow(), **values)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def fail_and_refund(db: Database, req_id: str, reason: str, *, track_id: str | None = None) -> bool:
    """Mark the request failed and give its quota or credit back, once:
    the first caller to move it out of a pending state refunds."""
    with db.session() as s:
        now = utcnow()
        extra = {"track_id": track_id} if track_id else {}
        if not _set(s, req_id, PENDING_STATES, status="failed", reason=reason[:1000], **extra):
            s.rollback()
            return False
        req = s.get(TrackRequest, req_id)
        assert req is not None
        refunded = s.execute(
            update(TrackRequest)
            .where(TrackRequest.id == req_id, TrackRequest.refunded_at.is_(None))
            .values(refunded_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if refunded == 1 and req.charge == "credit":
            add_credits(s, req.user_id, +1, kind="refund", ref=f"request:{req_id}:refund")
        record_event(
            s,
            "request_failed",
            user_id=req.user_id,
            properties={"request_id": req_id, "reason": reason[:300], "charge": req.charge},
        )
        s.commit()
        log.info("request %s failed (%s); %s refunded", req_id, reason, req.charge)
        return True


# -- following requests to air -----------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a request's batch is, from the lakehouse and the run."""

    status: str
    track_id: str | None = None
    reason: str | None = None
    duration_s: float | None = None


def batch_progress(lh: Lakehouse, batch_id: str, run_status: str | None) -> Progress:
    """The request's stage: its rows in the track tables first (they are
    the truth), then the Dagster run's status for what has no row yet."""
    rotation = lh.read("rotation", columns=["track_id", "duration_s"], where={"batch_id": batch_id})
    if rotation.num_rows:
        row = rotation.to_pylist()[0]
        return Progress("passed", row["track_id"], duration_s=row["duration_s"])
    tracks = lh.read("tracks", columns=["track_id"], where={"batch_id": batch_id})
    if not tracks.num_rows:
        if run_status in RUN_ENDED:
            return Progress(
                "failed", reason=f"the generation run ended ({run_status}) without a track"
            )
        return Progress("generating" if run_status == "STARTED" else "queued")
    track_id = tracks.column("track_id")[0].as_py()
    scores = lh.read(
        "track_scores", columns=["track_id", "passed", "reasons"], where={"batch_id": batch_id}
    ).to_pylist()
    if not scores:
        if run_status in RUN_ENDED:
            return Progress("failed", track_id, f"the run ended ({run_status}) before scoring")
        return Progress("scoring", track_id)
    if not scores[0]["passed"]:
        reasons = "; ".join(scores[0]["reasons"] or []) or "below the quality threshold"
        return Progress("failed", track_id, f"the track failed the quality gate: {reasons}")
    if run_status in RUN_ENDED:
        return Progress(
            "failed",
            track_id,
            f"the run ended ({run_status}) before the track entered the rotation "
            "(mastering or the masters gate failed)",
        )
    return Progress("mastering", track_id)


class RequestTracker:
    """Launches requests' runs and follows them until they air or fail."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        lakehouse: Lakehouse,
        station: StationState,
        pipeline: PipelineLauncher | Callable[[], PipelineLauncher],
        worker: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.lakehouse = lakehouse
        self.station = station
        # A callable follows the app context's launcher if it is replaced.
        self._pipeline = pipeline
        self.worker = worker or uuid7()[-12:]
        self._task: asyncio.Task[None] | None = None
        self._launches: set[asyncio.Task[None]] = set()
        self.errors = 0

    @property
    def pipeline(self) -> PipelineLauncher:
        p = self._pipeline
        return p if isinstance(p, PipelineLauncher) else p()

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="requests")

    async def stop(self) -> None:
        for task in [self._task, *self._launches]:
            if task is not None:
                task.cancel()
        for task in [self._task, *self._launches]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                log.exception("following requests failed; trying again")
            await asyncio.sleep(self.settings.request_poll_s)

    def launch_soon(self, request_id: str) -> None:
        """Launch the request's run now, beside the loop (a POST returns first)."""
        task = asyncio.get_running_loop().create_task(self.launch(request_id))
        self._launches.add(task)
        task.add_done_callback(self._launches.discard)

    # -- launching ------------------------------------------------------------------
    def _claim(self, request_id: str) -> TrackRequest | None:
        """Claim the launch (one worker wins), or None."""
        stale = utcnow() - timedelta(seconds=LAUNCH_CLAIM_S)
        with self.db.session() as s:
            result = s.execute(
                update(TrackRequest)
                .where(
                    TrackRequest.id == request_id,
                    TrackRequest.status == "queued",
                    (TrackRequest.run_id.is_(None))
                    | (
                        TrackRequest.run_id.startswith("launching:")
                        & (TrackRequest.updated_at < stale)
                    ),
                )
                .values(run_id=f"launching:{self.worker}", updated_at=utcnow())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                s.rollback()
                return None
            s.commit()
            return s.get(TrackRequest, request_id)

    async def launch(self, request_id: str) -> None:
        req = await anyio.to_thread.run_sync(self._claim, request_id)
        if req is None:
            return
        prompt = req.prompt if not req.mood else f"{req.prompt} ({req.mood} mood)"
        data = PipelineRunCreate(
            genres=[req.genre],
            count=1,
            duration_s=req.duration_s,
            bpm=req.bpm,
            prompt=prompt,
            backend=req.generator,
        )
        extra: dict[str, Any] = {"request_id": req.id}
        if req.paid:
            extra |= {
                "commercial_only": True,
                "license_policy": self.settings.request_license_policy,
            }
        try:
            run = await self.pipeline.launch(
                data, requested_by=req.user_id, batch_id=req.batch_id, config=extra
            )
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await anyio.to_thread.run_sync(
                fail_and_refund, self.db, req.id, f"the generation could not be started: {message}"
            )
            return

        def record() -> None:
            with self.db.session() as s:
                s.execute(
                    update(TrackRequest)
                    .where(TrackRequest.id == req.id)
                    .values(run_id=run.run_id, updated_at=utcnow())
                )
                s.commit()

        await anyio.to_thread.run_sync(record)

    # -- following ------------------------------------------------------------------
    def _active(self) -> list[TrackRequest]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(TrackRequest)
                    .where(TrackRequest.status.in_(PENDING_STATES))
                    .order_by(TrackRequest.created_at)
                    .limit(500)
                )
            )

    async def step(self) -> None:
        """One pass over the requests in flight."""
        active = await anyio.to_thread.run_sync(self._active)
        for req in active:
            if req.status == "queued_on_air":
                await anyio.to_thread.run_sync(self._follow_air, req)
                continue
            if req.run_id is None or req.run_id.startswith("launching:"):
                if req.run_id is None or req.updated_at < utcnow() - timedelta(
                    seconds=LAUNCH_CLAIM_S
                ):
                    await self.launch(req.id)
                continue
            try:
                run_status: str | None = (await self.pipeline.run(req.run_id)).status
            except Exception as exc:  # Dagster unreachable: the lakehouse still tells
                log.warning("run %s of request %s: %s", req.run_id, req.id, exc)
                run_status = None
            progress = await anyio.to_thread.run_sync(
                batch_progress, self.lakehouse, req.batch_id, run_status
            )
            if progress.status == "failed" and run_status in RUN_FAILED:
                try:
                    detail = await self.pipeline.failure_reason(req.run_id)
                except Exception:  # the reason is a courtesy; the failure stands
                    detail = None
                if detail:
                    progress = replace(progress, reason=f"{progress.reason}: {detail}")
            await anyio.to_thread.run_sync(self._advance, req, progress)

    def _advance(self, req: TrackRequest, progress: Progress) -> None:
        if progress.status == "failed":
            fail_and_refund(
                self.db,
                req.id,
                progress.reason or "the generation failed",
                track_id=progress.track_id,
            )
            return
        if progress.status == "passed":
            self._put_on_air(req, progress)
            return
        if progress.status != req.status:
            with self.db.session() as s:
                if _set(
                    s, req.id, [req.status], status=progress.status, track_id=progress.track_id
                ):
                    s.commit()

    def _display_name(self, req: TrackRequest) -> str | None:
        if not req.show_name:
            return None
        with self.db.session() as s:
            user = s.get(User, req.user_id)
            return user.display_name if user is not None else None

    def _expected_air(self, priority: int, now: datetime) -> datetime:
        """When a request of ``priority`` queued now should start: after what
        is on air and what airs before it (operators' picks, requests of
        its priority or higher queued earlier)."""
        np = self.station.now_playing()
        fade = self.settings.stream_crossfade_s
        at = now
        if np is not None:
            end = np.started_at + timedelta(seconds=np.duration_s)
            at = max(now, end - timedelta(seconds=fade))
        ahead = [
            e.track_id
            for e in self.station.queue()
            if e.source == "operator" or e.priority >= priority
        ]
        durations = _durations(self.lakehouse, ahead)
        for track_id in ahead:
            at += timedelta(seconds=max(0.0, durations.get(track_id, 180.0) - fade))
        return at

    def _put_on_air(self, req: TrackRequest, progress: Progress) -> None:
        assert progress.track_id is not None
        expected = self._expected_air(req.priority, utcnow())
        with self.db.session() as s:
            # The claim: one worker moves it to queued_on_air, then enqueues.
            if not _set(
                s,
                req.id,
                ["queued", "generating", "scoring", "mastering"],
                status="queued_on_air",
                track_id=progress.track_id,
                reason=None,
                expected_air_at=expected,
            ):
                s.rollback()
                return
            s.commit()
        try:
            entry = self.station.enqueue(
                progress.track_id,
                source="request",
                requested_by=req.user_id,
                request_id=req.id,
                priority=req.priority,
                display_name=self._display_name(req),
            )
        except Exception:
            with self.db.session() as s:  # give the claim back; the next pass retries
                _set(s, req.id, ["queued_on_air"], status="mastering", expected_air_at=None)
                s.commit()
            raise
        with self.db.session() as s:
            s.execute(
                update(TrackRequest)
                .where(TrackRequest.id == req.id)
                .values(queue_entry_id=entry.entry_id, updated_at=utcnow())
            )
            record_event(
                s,
                "request_queued_on_air",
                user_id=req.user_id,
                track_id=progress.track_id,
                properties={"request_id": req.id, "expected_air_at": expected.isoformat()},
            )
            s.commit()

    def _follow_air(self, req: TrackRequest) -> None:
        np = self.station.now_playing()
        if np is not None and req.track_id is not None and np.track_id == req.track_id:
            with self.db.session() as s:
                if _set(s, req.id, ["queued_on_air"], status="aired", aired_at=np.started_at):
                    record_event(
                        s,
                        "request_aired",
                        user_id=req.user_id,
                        track_id=req.track_id,
                        properties={
                            "request_id": req.id,
                            "waited_s": (np.started_at - req.created_at).total_seconds(),
                        },
                    )
                    s.commit()
            return
        queued = {e.entry_id for e in self.station.queue()}
        if req.queue_entry_id in queued:
            return
        # Taken from the queue; it starts once the deck before it ends.
        expected = req.expected_air_at or req.updated_at
        if utcnow() <= expected + timedelta(seconds=req.duration_s + AIR_GRACE_S):
            return
        plays = self.lakehouse.read(
            "plays", columns=["track_id", "started_at"], where={"track_id": req.track_id}
        )
        if plays.num_rows:  # it aired while no worker was looking
            first = min(plays.column("started_at").to_pylist())
            with self.db.session() as s:
                if _set(s, req.id, ["queued_on_air"], status="aired", aired_at=first):
                    s.commit()
            return
        fail_and_refund(self.db, req.id, "the streamer could not play the track")


def _durations(lh: Lakehouse, track_ids: list[str]) -> dict[str, float]:
    if not track_ids:
        return {}
    wanted = set(track_ids)
    table = lh.read("mastered_tracks", columns=["track_id", "duration_s"])
    return {
        r["track_id"]: float(r["duration_s"]) for r in table.to_pylist() if r["track_id"] in wanted
    }
