"""Everything a request may need, built once per app: settings, the app
database, tokens, rate limiter, lakehouse catalog, station state and the
pipeline launcher. Tests pass their own pieces (dependency injection)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from limits import RateLimitItem

from serving.billing.stripe_client import StripeGateway
from serving.billing.webhooks import WebhookWriter
from serving.cache import RefreshingCache, TTLCache
from serving.db.session import Database
from serving.ratelimit import RateLimiter
from serving.security.credentials import Principal
from serving.security.tokens import TokenService
from serving.services.auth import AuthService
from serving.services.catalog import TrackCatalog
from serving.services.dagster import GraphQLLauncher, PipelineLauncher
from serving.services.requests import RequestTracker
from serving.services.stream import StationView
from serving.services.vote_writer import VoteWriter
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import StationState, station_state_from_url

# Stream status is polled by every player; a second of staleness in
# listener counts is invisible, and position is extrapolated per response.
STREAM_STATUS_CACHE_S = 1.0
# How long a worker trusts a resolved caller (session not revoked, role).
PRINCIPAL_CACHE_S = 1.0


@dataclass(frozen=True)
class Limits:
    ip: RateLimitItem
    principal: RateLimitItem
    login_ip: RateLimitItem
    login_account: RateLimitItem
    # One attempt per client and account, in the account limit's window:
    # what a client with no failures gets while the account is throttled.
    login_client: RateLimitItem

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        parse = RateLimiter.item
        account = parse(s.login_rate_limit_account)
        return cls(
            parse(s.rate_limit_ip),
            parse(s.rate_limit_principal),
            parse(s.login_rate_limit_ip),
            account,
            type(account)(1, account.multiples, namespace=account.namespace),
        )


@dataclass
class AppContext:
    settings: Settings
    db: Database
    tokens: TokenService
    auth: AuthService
    limits: Limits
    lakehouse: Lakehouse
    catalog: TrackCatalog
    station: StationState
    pipeline: PipelineLauncher
    # Created in the lifespan, on the server's event loop.
    limiter: RateLimiter = field(init=False)
    redis: Any = None
    top_cache: RefreshingCache[bytes] = field(init=False)
    status_cache: RefreshingCache[StationView] = field(init=False)
    health_body: bytes | None = None
    principals: TTLCache[Principal] = field(init=False)
    votes: VoteWriter = field(init=False)
    # Stripe (checkout, portal, webhook signatures) and the follower of
    # listeners' track requests (serving.billing, serving.services.requests).
    payments: StripeGateway = field(init=False)
    requests: RequestTracker = field(init=False)
    webhooks: WebhookWriter = field(init=False)

    def __post_init__(self) -> None:
        self.top_cache = RefreshingCache(self.settings.top_tracks_cache_s)
        self.status_cache = RefreshingCache(STREAM_STATUS_CACHE_S, max_entries=4)
        self.principals = TTLCache(PRINCIPAL_CACHE_S, max_entries=10_000)
        self.votes = VoteWriter(self.db)
        self.payments = StripeGateway(self.settings)
        self.webhooks = WebhookWriter(self.db)
        self.requests = RequestTracker(
            db=self.db,
            settings=self.settings,
            lakehouse=self.lakehouse,
            station=self.station,
            pipeline=lambda: self.pipeline,
        )

    async def start(self) -> None:
        self.db.start_checkpointer()
        self.votes.start()
        self.limiter = RateLimiter(
            self.settings.redis_url, key_prefix=self.settings.rate_limit_key_prefix
        )
        if self.settings.redis_url:
            from sonicforge.redis_urls import async_redis_client

            self.redis = async_redis_client(self.settings.redis_url)  # Sentinel URLs too
        self.requests.start()
        self.webhooks.start()

    async def stop(self) -> None:
        await self.requests.stop()
        await anyio.to_thread.run_sync(self.webhooks.stop)
        await anyio.to_thread.run_sync(self.votes.stop)
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.pipeline.close()
        self.db.dispose()


def build_context(
    settings: Settings,
    *,
    db: Database | None = None,
    lakehouse: Lakehouse | None = None,
    station: StationState | None = None,
    pipeline: PipelineLauncher | None = None,
) -> AppContext:
    settings.check_serving()
    tokens = TokenService(
        settings.resolved_jwt_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
    )
    lakehouse = lakehouse or Lakehouse.from_settings(settings)
    if pipeline is None:
        if settings.dagster_graphql_url:
            pipeline = GraphQLLauncher(
                settings.dagster_graphql_url,
                location=settings.dagster_location_name,
                repository=settings.dagster_repository_name,
            )
        else:
            from serving.services.dagster_embedded import EmbeddedLauncher

            pipeline = EmbeddedLauncher(settings)
    return AppContext(
        settings=settings,
        db=db or Database(settings.resolved_app_database_url),
        tokens=tokens,
        auth=AuthService(tokens, bcrypt_rounds=settings.bcrypt_rounds),
        limits=Limits.from_settings(settings),
        lakehouse=lakehouse,
        catalog=TrackCatalog(lakehouse, check_every_s=settings.lakehouse_cache_check_s),
        station=station or station_state_from_url(settings.redis_url),
        pipeline=pipeline,
    )
