"""One settings object for the whole platform.

Embedded defaults live under ``./var/`` so one command runs the radio on a
laptop; production values (an ``s3://`` lakehouse, PostgreSQL, Redis, an
MLflow server) come from the environment only, prefix ``SONICFORGE_``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sonicforge.errors import ConfigurationError

# MPEG-1 Layer III bitrates (ISO/IEC 11172-3), the mount's allowed values.
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


class Settings(BaseSettings):
    """Typed settings, read from ``SONICFORGE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SONICFORGE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")

    # Lakehouse: a local path or an object-store URI (s3://bucket/prefix).
    lakehouse_uri: str | None = None
    # Storage options passed to deltalake and pyarrow's S3 layer, as JSON in the
    # environment: {"AWS_REGION": "...", "AWS_ENDPOINT_URL": "...", ...}.
    lakehouse_storage_options: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    dagster_home: Path | None = None
    mlflow_tracking_uri: str | None = None
    app_database_url: str | None = None
    redis_url: str | None = None
    duckdb_path: Path | None = None

    default_backend: str = "procedural"
    # Processes that generate, score and master a batch (one core each).
    generation_workers: int = Field(default=2, ge=1, le=64)

    # generation / mlflow
    # "registry": the Dagster generator resource follows the alias below of
    # the registered generator in MLflow (moving it switches the backend);
    # "settings": it uses default_backend and ignores the registry.
    generator_source: Literal["registry", "settings"] = "registry"
    generator_model_name: str = "sonicforge-generator"
    generator_alias: str = "production"
    # MusicGen weights: a hub id (looked up in the Hugging Face cache), and
    # SONICFORGE_MUSICGEN_PATH, a model directory (used when no model is
    # named) or a directory of model directories named like the model.
    musicgen_model: str = "facebook/musicgen-small"
    musicgen_path: Path | None = None
    musicgen_device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    musicgen_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # Off by default: a radio should not fetch gigabytes in the middle of a
    # run; `sonicforge models pull NAME` downloads ahead of time.
    musicgen_allow_download: bool = False
    mlflow_ui_port: int = Field(default=5000, ge=1, le=65535)
    dagster_ui_port: int = Field(default=3000, ge=1, le=65535)
    # A generation run in flight for longer than this is taken for dead: the
    # air-feed sensor stops waiting for it and Dagster's run monitoring (the
    # embedded dagster.yaml) marks it failed.
    generation_run_timeout_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    # `make run` (cli/run.py): the first batch when nothing is on air. Its
    # first track is a short one, made and aired on its own (mastering takes
    # seconds per minute of audio); the rest follow in a second run.
    run_host: str = "127.0.0.1"
    run_first_batch: int = Field(default=6, ge=1, le=64)
    run_first_duration: float = Field(default=180.0, ge=10.0, le=600.0)
    run_first_track_duration: float = Field(default=30.0, ge=10.0, le=600.0)

    # serving
    # The JWT signing key. Unset in development, a random key is kept in
    # var/secrets/jwt.key so both API workers and restarts share it; anywhere
    # else an unset or placeholder key stops the API from starting.
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "sonicforge"
    jwt_audience: str = "sonicforge-api"
    access_token_ttl_s: int = Field(default=15 * 60, ge=60, le=3600)
    refresh_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=3600, le=90 * 24 * 3600)
    # bcrypt cost; below 12 only where environment is "test" (check_serving).
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where share links land (the web player) and the API's own public address.
    web_base_url: str = "http://127.0.0.1:8000"
    # Rate limits in the `limits` notation ("300/minute", "5 per 15 minutes").
    rate_limit_ip: str = "600/minute"
    rate_limit_principal: str = "300/minute"
    login_rate_limit_ip: str = "20/minute"
    login_rate_limit_account: str = "5 per 15 minutes"
    # Redis key prefix of the counters: deployments sharing a Redis keep apart.
    rate_limit_key_prefix: str = "sonicforge:rl"
    # Set to launch generation runs through a Dagster webserver's GraphQL API
    # (e.g. http://127.0.0.1:3000/graphql); unset, runs go to the local instance.
    dagster_graphql_url: str | None = None
    dagster_location_name: str = "sonicforge"
    dagster_repository_name: str = "__repository__"
    # How often the API checks whether Delta tables moved (cached reads).
    lakehouse_cache_check_s: float = Field(default=2.0, ge=0.0, le=300.0)
    top_tracks_cache_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    # The Bayesian prior's weight in votes: a track needs about this many
    # votes before its own average outweighs the global mean.
    top_tracks_prior_votes: float = Field(default=10.0, gt=0.0, le=10_000.0)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    # Proxies whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips).
    trusted_proxies: str = "127.0.0.1"
    access_log: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # streaming
    # Where the streamer writes HLS segments, MP3 chunks and the visualizer
    # feed (default var/stream); the API, or a CDN, serves the same folder.
    stream_dir: Path | None = None
    stream_sample_rate: int = Field(default=48000, ge=32000, le=96000)
    # Equal-power crossfade between tracks; 0 plays them gapless.
    stream_crossfade_s: float = Field(default=4.0, ge=0.0, le=20.0)
    stream_skip_fade_s: float = Field(default=1.0, ge=0.0, le=5.0)
    # A listener's request that has passed the gate does not wait out a whole
    # rotation track: once the rotation track has aired this long, it
    # crossfades into the request (over stream_crossfade_s). 0 waits for the
    # track's end. Operator picks and other requests are never cut short.
    stream_request_segue_s: float = Field(default=20.0, ge=0.0, le=3600.0)
    stream_target_lufs: float = Field(default=-14.0, ge=-30.0, le=-6.0)
    # No track airs again within this many plays, nor within this many seconds.
    stream_no_repeat_count: int = Field(default=8, ge=0, le=10_000)
    stream_no_repeat_s: float = Field(default=3600.0, ge=0.0, le=7 * 24 * 3600)
    # The empty-rotation fallback: this many best-scored mastered tracks.
    stream_fallback_size: int = Field(default=20, ge=1, le=1000)
    stream_hls_segment_s: float = Field(default=6.0, ge=1.0, le=30.0)
    stream_hls_window: int = Field(default=6, ge=3, le=100)
    stream_hls_bitrates_kbps: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [64, 128, 256]
    )
    # FFmpeg's AAC coder: "fast" keeps the three-rung ladder near 4 % of a
    # core; "twoloop" sounds better at 64 kbps but costs about 11 % (bench/stream.py).
    stream_aac_coder: Literal["twoloop", "fast"] = "fast"
    stream_mp3_bitrate_kbps: int = Field(default=128, ge=32, le=320)
    stream_viz_fps: int = Field(default=25, ge=20, le=60)
    # RTMP pushes: one key per preset, and/or a JSON list of targets such as
    # [{"preset": "twitch", "key": "..."}, {"name": "lab", "url": "rtmp://h/app/key"}].
    stream_youtube_key: SecretStr | None = None
    stream_twitch_key: SecretStr | None = None
    stream_kick_key: SecretStr | None = None
    stream_rtmp_targets: SecretStr | None = None
    stream_video_size: str = Field(default="1280x720", pattern=r"^\d{2,4}x\d{2,4}$")
    stream_video_fps: int = Field(default=25, ge=10, le=60)
    stream_video_bitrate_kbps: int = Field(default=2500, ge=200, le=20_000)
    stream_plays_flush_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    # The feed sensor asks for a generation run when the rotation holds less
    # unplayed airtime than this.
    stream_min_unplayed_airtime_s: float = Field(default=7200.0, ge=0.0)
    # Run the streamer inside the API process (a thread) instead of as its own
    # process: the no-Redis default, where only one process shares the state.
    stream_embedded: bool = False

    # scale-out (deploy/): Redis Sentinel, the streamer's hot standby, HLS
    # caching by a CDN, OpenTelemetry, PostgreSQL for the Dagster instance.
    # Sentinels as "host:port" (a JSON list or comma-separated) and the
    # master's service name: the same as a redis+sentinel:// SONICFORGE_REDIS_URL.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_service: str = Field(default="sonicforge", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    redis_sentinel_db: int = Field(default=0, ge=0, le=15)
    # Two streamers may run against one Redis: a lease (renewed every
    # stream_lease_renew_s, lapsing after stream_lease_ttl_s) says which airs.
    stream_standby: bool = False
    stream_lease_ttl_s: float = Field(default=3.0, ge=1.0, le=60.0)
    stream_lease_renew_s: float = Field(default=1.0, gt=0.0, le=20.0)
    stream_lease_key: str = "sonicforge:stream:lease"
    # Cache-Control of /hls/ for a CDN: segment names never repeat (cached
    # this long); playlists for one target duration (streaming.hls_files).
    stream_hls_segment_max_age_s: int = Field(default=86400, ge=0, le=31_536_000)
    # OpenTelemetry traces, off by default: "otlp" posts OTLP/HTTP protobuf
    # to otel_endpoint (+ /v1/traces), "console" prints spans (debugging).
    otel_enabled: bool = False
    otel_exporter: Literal["otlp", "console"] = "otlp"
    otel_endpoint: str = "http://127.0.0.1:4318"
    otel_service_name: str = Field(default="sonicforge", min_length=1, max_length=100)
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # The production profile's Dagster instance: run, event-log and schedule
    # storage on dagster-postgres (orchestration.instance writes dagster.yaml).
    dagster_postgres_url: str | None = None
    # "k8s": the code location's jobs run each step as a Kubernetes Job
    # (dagster-k8s's k8s_job_executor; deploy/dagster/values.yaml).
    dagster_run_executor: Literal["default", "k8s"] = "default"

    # analytics (listener events, the outbox drain, KPIs, experiments)
    # Drained outbox rows are deleted after this many hours; until then a
    # client's retry of an event id is recognised and not accepted twice.
    analytics_outbox_retention_h: float = Field(default=168.0, ge=0.0, le=90 * 24.0)
    # Rows per Delta commit of the drain (each batch is one commit per table).
    analytics_drain_batch: int = Field(default=50_000, ge=100, le=1_000_000)
    # A client clock further off than this is clamped to it and the event flagged.
    analytics_max_clock_skew_s: float = Field(default=24 * 3600.0, ge=60.0, le=30 * 24 * 3600.0)
    analytics_trending_half_life_h: float = Field(default=24.0, gt=0.0, le=24 * 365.0)
    analytics_dashboard_cache_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    # Where API workers share Prometheus samples (prometheus-client's
    # multiprocess mode); unset with one worker: samples live in the process.
    metrics_multiproc_dir: Path | None = None

    # payments (serving/billing): Stripe and paid track requests
    stripe_api_key: SecretStr | None = None
    # The endpoint secret (whsec_...) webhook signatures are checked with.
    stripe_webhook_secret: SecretStr | None = None
    # Another API base (a Stripe stand-in in tests); unset, api.stripe.com.
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    stripe_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    # Stripe's own default: older signatures are refused (replays).
    stripe_webhook_tolerance_s: int = Field(default=300, ge=1, le=3600)
    # Plan and credit-pack ids to Stripe price ids, as JSON in the environment:
    # {"pro": "price_...", "premium": "price_...", "credits_10": "price_..."}.
    stripe_price_ids: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # Where Checkout sends the buyer back; {CHECKOUT_SESSION_ID} is Stripe's.
    # Unset: the web player's /billing/success and /billing/cancel.
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    billing_portal_return_url: str | None = None
    # A subscription whose invoice failed keeps its plan this long, then drops to Free.
    billing_grace_period_s: float = Field(default=3 * 24 * 3600.0, ge=0.0, le=60 * 24 * 3600.0)
    # Track requests: prompt moderation and what a paid request does when the
    # generator the registry names is not licensed for commercial use.
    request_prompt_max_chars: int = Field(default=300, ge=10, le=2000)
    request_block_list: Annotated[list[str], NoDecode] = Field(default_factory=list)
    request_license_policy: Literal["fallback", "refuse"] = "fallback"
    # How often the API follows requests in flight (run status, gate, air).
    request_poll_s: float = Field(default=1.0, gt=0.0, le=60.0)

    @field_validator("request_block_list", mode="before")
    @classmethod
    def _parse_block_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("stripe_price_ids", mode="before")
    @classmethod
    def _parse_price_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    "SONICFORGE_STRIPE_PRICE_IDS must be a JSON object of plan or pack ids to "
                    f'Stripe price ids, e.g. {{"pro": "price_123"}}: {exc}'
                ) from exc
        return value

    # recommender (models/recommend/, assets/ml.py, serving/services/recommend.py)
    recommend_model_name: str = "sonicforge-recommender"
    recommend_alias: str = "champion"
    # The new version must beat TopPop and the champion on NDCG@10 by this
    # relative margin (0.05: 5 % better) to take the alias.
    recommend_promotion_margin: float = Field(default=0.0, ge=0.0, le=10.0)
    recommend_test_days: float = Field(default=2.0, gt=0.0, le=60.0)
    # How often the API asks the registry whether the alias moved.
    recommend_poll_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    # Interaction weights: a play counts `play` times the share played, a
    # skip `skip`; stars count `star` per star above (or below) 3.
    recommend_weight_play: float = 1.0
    recommend_weight_skip: float = -1.0
    recommend_weight_star: float = 0.75
    recommend_weight_upvote: float = 1.5
    recommend_weight_downvote: float = -1.5
    recommend_weight_share: float = 2.0
    recommend_weight_request: float = 3.0
    # A play under this share of the track counts as a skip.
    recommend_skip_below: float = Field(default=0.35, ge=0.0, le=1.0)
    # Demos: listener_interactions also reads the simulator's tables (rows
    # stay labelled simulated).
    recommend_include_simulated: bool = False
    # The generation plan: the share spread evenly over genres, and the
    # half-life of demand.
    plan_exploration: float = Field(default=0.2, ge=0.0, le=1.0)
    plan_half_life_days: float = Field(default=14.0, gt=0.0, le=365.0)

    @field_validator("stream_hls_bitrates_kbps", "cors_origins", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        # A JSON list or comma-separated values ("64,128,256") in the environment.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("stream_mp3_bitrate_kbps")
    @classmethod
    def _mp3_bitrate(cls, value: int) -> int:
        # MPEG-1 Layer III has fourteen bitrates; any other is no MP3 stream.
        if value not in MP3_BITRATES_KBPS:
            raise ValueError(
                f"{value} kbps is not an MP3 bitrate; use one of "
                + ", ".join(map(str, MP3_BITRATES_KBPS))
            )
        return value

    @field_validator("lakehouse_storage_options", mode="before")
    @classmethod
    def _parse_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    "SONICFORGE_LAKEHOUSE_STORAGE_OPTIONS must be a JSON object of strings, "
                    f'e.g. {{"AWS_REGION": "eu-west-1"}}: {exc}'
                ) from exc
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _parse_sentinels(cls, value: Any) -> Any:
        return cls._parse_list(value)

    @model_validator(mode="after")
    def _scale_out(self) -> Settings:
        if self.redis_sentinels and not self.redis_url:
            # One URL for every Redis client (sonicforge.redis_urls).
            from sonicforge.redis_urls import sentinel_url

            self.redis_url = sentinel_url(
                self.redis_sentinels, self.redis_sentinel_service, db=self.redis_sentinel_db
            )
        if self.stream_lease_renew_s * 2 > self.stream_lease_ttl_s:
            raise ValueError(
                f"stream_lease_renew_s ({self.stream_lease_renew_s:g}) must be at most half of "
                f"stream_lease_ttl_s ({self.stream_lease_ttl_s:g}), or one late renewal "
                "hands the air to the standby"
            )
        return self

    @property
    def resolved_lakehouse_uri(self) -> str:
        return self.lakehouse_uri or str((self.var_dir / "lake").absolute())

    @property
    def resolved_dagster_home(self) -> Path:
        return (self.dagster_home or self.var_dir / "dagster").absolute()

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.var_dir / 'mlflow.db').absolute()}"

    @property
    def resolved_mlflow_artifact_root(self) -> str:
        return str((self.var_dir / "mlartifacts").absolute())

    @property
    def resolved_app_database_url(self) -> str:
        return self.app_database_url or f"sqlite:///{(self.var_dir / 'app.db').absolute()}"

    @property
    def resolved_duckdb_path(self) -> Path:
        return (self.duckdb_path or self.var_dir / "sonicforge.duckdb").absolute()

    def check_production(self) -> None:
        """Refuse embedded defaults where production needs real services."""
        if self.environment != "production":
            return
        missing = [
            name
            for name, value in (
                ("SONICFORGE_LAKEHOUSE_URI", self.lakehouse_uri),
                ("SONICFORGE_APP_DATABASE_URL", self.app_database_url),
                ("SONICFORGE_REDIS_URL", self.redis_url),
                ("SONICFORGE_MLFLOW_TRACKING_URI", self.mlflow_tracking_uri),
                ("SONICFORGE_DAGSTER_POSTGRES_URL", self.dagster_postgres_url),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                "production needs explicit service settings; missing: " + ", ".join(missing)
            )

    def resolved_jwt_secret(self) -> str:
        """The JWT key; in development a random one kept under var/secrets."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.var_dir / "secrets" / "jwt.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp-{secrets.token_hex(4)}")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            # link() fails if the key exists: two workers starting together
            # keep whichever was linked first and both read that one.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip()

    def check_serving(self) -> None:
        """Refuse serving settings that are unsafe where they are used."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.environment != "development" and (
            not secret or secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < 32
        ):
            raise ConfigurationError(
                "SONICFORGE_JWT_SECRET must be a random key of at least 32 characters "
                f"outside development (environment is {self.environment!r}); "
                'generate one with: python -c "import secrets; print(secrets.token_hex(32))"'
            )
        if self.bcrypt_rounds < 12 and self.environment != "test":
            raise ConfigurationError(
                f"SONICFORGE_BCRYPT_ROUNDS={self.bcrypt_rounds} is allowed only in tests; "
                "use 12 or more"
            )


_PLACEHOLDER_SECRETS = frozenset({"changethis", "change-me", "changeme", "secret", "dev", "test"})


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
