"""Analytics: tracked events (the Segment / RudderStack shape), experiments,
the event read-out, the dashboard and public statistics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel

from serving.schemas.common import PRINTABLE, ErrorIssue, Schema, TrackId

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1024 * 1024

EventType = Literal["track", "page", "identify"]
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
ANONYMOUS_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
EXPERIMENT_ID_PATTERN = r"^[a-z0-9_]{1,64}$"

EventId = Annotated[str, Field(pattern=EVENT_ID_PATTERN, examples=["ajs-next-5f0c2a9d"])]
AnonymousId = Annotated[
    str, Field(pattern=ANONYMOUS_ID_PATTERN, examples=["anon-3c1be07d4e11a2b3"])
]
ShortText = Annotated[str, Field(min_length=1, max_length=128), PRINTABLE]
LongText = Annotated[str, Field(max_length=2048), PRINTABLE]


class ClientApp(Schema):
    name: ShortText | None = None
    version: ShortText | None = None
    build: ShortText | None = None


class PageContext(Schema):
    path: LongText | None = None
    url: LongText | None = None
    referrer: LongText | None = None
    title: LongText | None = None
    search: LongText | None = None


class EventContext(BaseModel):
    """Where the event happened. The fields named here are checked; others
    (Segment's ``library``, ``screen``, ``campaign`` …) are kept as sent."""

    model_config = ConfigDict(extra="allow")

    app: ClientApp | None = None
    page: PageContext | None = None
    user_agent: Annotated[str, Field(max_length=512), PRINTABLE] | None = None
    locale: Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")] | None = None
    timezone: ShortText | None = None


def _object_size(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 200:
        raise ValueError(f"at most 200 properties per event ({len(value)} given)")
    return value


class TrackEvent(Schema):
    """One event. ``user_id`` is never sent: it comes from the access token;
    without one, ``anonymous_id`` is required."""

    event_id: EventId | None = Field(
        default=None,
        description="The client's id of this event, its dedupe key (a retry with the same id "
        "is accepted once). Made by the server when missing.",
    )
    type: EventType = "track"
    event: ShortText | None = Field(
        default=None, description="The event's name (required for 'track').", examples=["skip"]
    )
    anonymous_id: AnonymousId | None = None
    track_id: TrackId | None = None
    properties: Annotated[dict[str, Any], AfterValidator(_object_size)] = Field(
        default_factory=dict, examples=[{"seconds": 30, "output": "hls"}]
    )
    context: EventContext | None = None
    timestamp: datetime | None = Field(
        default=None,
        description="When it happened, by the client's clock (default: sent_at). "
        "It may not be after sent_at.",
    )
    sent_at: datetime | None = Field(
        default=None,
        description="When the client sent it, by its clock; the difference to the server's "
        "receipt is the clock skew removed from the event's time.",
    )


class TrackBatch(Schema):
    batch: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        description=f"1 to {MAX_BATCH_EVENTS} events (each a TrackEvent), at most 1 MB in all.",
    )
    sent_at: datetime | None = Field(
        default=None, description="The batch's send time; events without their own inherit it."
    )


class TrackRequest(RootModel[TrackEvent | TrackBatch]):
    """One event, or a batch of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"event_id": "ajs-5f0c2a9d", "type": "track", "event": "skip",
                 "anonymous_id": "anon-3c1be07d", "track_id": "t-3f9a2c1be07d4e11",
                 "properties": {"position_s": 12.5}, "sent_at": "2026-12-01T12:00:00Z"},
                {"batch": [{"event": "heartbeat", "anonymous_id": "anon-3c1be07d",
                            "properties": {"seconds": 10, "output": "hls"}}],
                 "sent_at": "2026-12-01T12:00:00Z"},
            ]
        }
    )  # fmt: skip


class RejectedEvent(BaseModel):
    index: int = Field(ge=0, description="The event's position in the batch.")
    event_id: str | None = None
    errors: list[ErrorIssue]


class FlaggedEvent(BaseModel):
    index: int = Field(ge=0)
    event_id: str
    flags: list[str] = Field(examples=[["clock_skew_clamped"]])


class TrackAccepted(BaseModel):
    """What was made durable (in the outbox, committed) and what was not."""

    accepted: int = Field(ge=0)
    event_ids: list[str] = Field(description="The ids of the accepted events, in order.")
    rejected: list[RejectedEvent] = Field(default_factory=list)
    flagged: list[FlaggedEvent] = Field(default_factory=list)
    received_at: datetime


# -- experiments ---------------------------------------------------------------


class VariantPublic(BaseModel):
    name: str
    weight: float
    config: dict[str, Any]


class ExperimentPublic(BaseModel):
    experiment_id: str
    description: str
    status: str
    metric: str
    metric_kind: str
    metric_event: str
    direction: str
    min_sample: int
    variants: list[VariantPublic]


class ExperimentList(BaseModel):
    items: list[ExperimentPublic]


class AssignmentPublic(BaseModel):
    experiment_id: str
    variant: str
    config: dict[str, Any]
    unit_id: str = Field(description="The user id, or the anonymous id the variant is keyed on.")
    first_exposure: bool = Field(description="True when this call recorded the exposure.")
    exposed_at: datetime


class ConversionCreate(Schema):
    anonymous_id: AnonymousId | None = Field(
        default=None, description="Required without an access token."
    )
    event: ShortText | None = Field(
        default=None, description="The conversion's name (default: the experiment's metric event)."
    )
    value: float | None = Field(
        default=None, ge=-1e12, le=1e12, allow_inf_nan=False, examples=[9.99]
    )
    properties: Annotated[dict[str, Any], AfterValidator(_object_size)] = Field(
        default_factory=dict
    )


class ConversionPublic(BaseModel):
    experiment_id: str
    event_id: str
    variant: str | None = Field(description="The unit's variant; null without an exposure.")
    counted: bool = Field(
        description="False when the unit was never exposed: recorded and flagged, not counted."
    )
    flags: list[str]


# -- read-out ------------------------------------------------------------------


class EventPublic(BaseModel):
    event_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    track_id: str | None
    properties: dict[str, Any]
    context: dict[str, Any] | None
    experiment_id: str | None
    variant: str | None
    sent_at: datetime | None
    received_at: datetime
    ts: datetime
    flags: list[str]


class EventPage(BaseModel):
    items: list[EventPublic]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )
    limit: int


class TrendingTrack(BaseModel):
    track_id: str
    rank: int
    score: float
    plays: int
    votes: int
    shares: int


class TopTrackToday(BaseModel):
    track_id: str
    plays: int
    unique_listeners: int
    votes: int
    mean_stars: float | None


class KpiDay(BaseModel):
    day: date
    peak_concurrent_listeners: int
    mean_concurrent_listeners: float
    listening_hours: float
    dau: int
    wau: int
    mau: int
    new_users: int
    votes: int
    shares: int
    requests: int
    plays: int
    generation_count: int
    generation_pass_rate: float | None
    generation_s_per_aired_hour: float | None
    conversions: int
    mrr: float | None


class GenerationHealth(BaseModel):
    tracks: int
    passed: int
    pass_rate: float | None
    last_generated_at: datetime | None
    rotation_size: int


class ExperimentSummary(BaseModel):
    experiment_id: str
    status: str
    variants: list[dict[str, Any]]


class OutboxLag(BaseModel):
    pending: int
    oldest_pending_at: datetime | None
    lag_s: float | None


class Dashboard(BaseModel):
    generated_at: datetime
    listeners_now: int
    listeners_by_output: dict[str, int]
    today: KpiDay | None
    trailing: list[KpiDay] = Field(description="The last 7 days of KPIs, newest first.")
    top_tracks: list[TopTrackToday]
    trending: list[TrendingTrack]
    generation: GenerationHealth
    experiments: list[ExperimentSummary]
    outbox: OutboxLag


class PublicStats(BaseModel):
    listeners_now: int
    tracks_generated: int
    hours_aired: float
    generated_at: datetime
