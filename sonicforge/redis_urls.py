"""Redis connection URLs: one server, or a master found through Sentinel.

``redis://``, ``rediss://`` and ``unix://`` name one server (redis-py's own
forms). A Sentinel deployment is named by

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]

with optional query parameters ``sentinel_password`` (when the sentinels
ask for a password of their own) and ``wait_replicas`` (how many replicas
must hold a queue change before it is acknowledged; default 1 through
Sentinel, 0 otherwise). Every process that talks to Redis builds its client
here, so the API workers, the rate limiter and the streamer follow a
failover the same way: a refused or dropped connection asks the sentinels
for the master again, and commands are retried for a bounded time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

from sonicforge.errors import ConfigurationError

SENTINEL_SCHEME = "redis+sentinel"
DIRECT_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL names."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    wait_replicas: int = 0
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)


def is_redis_url(url: str | None) -> bool:
    return bool(url) and str(url).split("://", 1)[0] in (*DIRECT_SCHEMES, SENTINEL_SCHEME)


def sentinel_url(
    sentinels: list[str], service: str, *, db: int = 0, password: str | None = None
) -> str:
    """The URL for a list of ``host:port`` sentinels and a service name."""
    if not sentinels:
        raise ConfigurationError("a Sentinel URL needs at least one sentinel host:port")
    auth = f":{password}@" if password else ""
    return f"{SENTINEL_SCHEME}://{auth}{','.join(sentinels)}/{service}/{db}"


def _port(text: str, url: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigurationError(f"sentinel port {text!r} in {url!r} is not a port (1-65535)")
    return port


def parse_redis_url(url: str) -> RedisTarget:
    """Read a Redis URL; a clear ``ConfigurationError`` for anything else."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in DIRECT_SCHEMES:
        direct = parse_qs(urlsplit(url).query).get("wait_replicas", ["0"])[0]
        if not direct.isdigit():
            raise ConfigurationError(f"wait_replicas={direct!r} in {url!r} is not a whole number")
        # Ours, not redis-py's: it would pass the option on to the client.
        split = urlsplit(url)
        kept = [(k, v) for k, v in parse_qsl(split.query) if k != "wait_replicas"]
        clean = split._replace(query=urlencode(kept)).geturl()
        return RedisTarget(url=clean, wait_replicas=int(direct))
    if scheme != SENTINEL_SCHEME:
        raise ConfigurationError(
            f"unsupported Redis URL {url!r}; allowed: redis://, rediss://, unix://, or "
            "redis+sentinel://host:port[,host:port...]/service[/db]"
        )
    rest = url.split("://", 1)[1]
    rest, _, query_text = rest.partition("?")
    auth, _, hosts_path = rest.rpartition("@")
    hosts, _, path = hosts_path.partition("/")
    username = password = None
    if auth:
        user, _, pw = auth.partition(":")
        username, password = (unquote(user) or None), (unquote(pw) or None)
    sentinels = []
    for item in (i.strip() for i in hosts.split(",")):
        if item.startswith("["):  # [IPv6]:port
            host, _, tail = item[1:].partition("]")
            port = tail.removeprefix(":") or str(DEFAULT_SENTINEL_PORT)
        else:
            host, _, port = item.rpartition(":")
            if not host:
                host, port = item, str(DEFAULT_SENTINEL_PORT)
        if not host:
            raise ConfigurationError(f"empty sentinel address in {url!r}")
        sentinels.append((host, _port(port, url)))
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ConfigurationError(
            f"the Sentinel URL {url!r} names no service; e.g. redis+sentinel://h:26379/mymaster/0"
        )
    db = 0
    if len(parts) > 1:
        if not parts[1].isdigit():
            raise ConfigurationError(f"database {parts[1]!r} in {url!r} is not a number")
        db = int(parts[1])
    params = {k: v[0] for k, v in parse_qs(query_text).items()}
    wait = params.pop("wait_replicas", "1")
    if not wait.isdigit():
        raise ConfigurationError(f"wait_replicas={wait!r} in {url!r} is not a whole number")
    return RedisTarget(
        url=url,
        sentinels=tuple(sentinels),
        service=parts[0],
        db=db,
        username=username,
        password=password,
        sentinel_password=params.pop("sentinel_password", None),
        wait_replicas=int(wait),
        options=params,
    )


def _retry_kwargs(*, retries: int, backoff_cap_s: float, asyncio: bool) -> dict[str, Any]:
    import redis.exceptions as rx

    if asyncio:
        from redis.asyncio.retry import Retry as AsyncRetry
        from redis.backoff import ExponentialBackoff

        retry: Any = AsyncRetry(ExponentialBackoff(cap=backoff_cap_s, base=0.05), retries)
    else:
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        retry = Retry(ExponentialBackoff(cap=backoff_cap_s, base=0.05), retries)
    return {
        "retry": retry,
        "retry_on_error": [rx.ConnectionError, rx.TimeoutError, rx.ReadOnlyError],
    }


def redis_client(
    url: str,
    *,
    retries: int = 20,
    backoff_cap_s: float = 0.5,
    socket_timeout_s: float = 2.0,
) -> Any:
    """A synchronous ``redis.Redis`` for ``url``; through Sentinel, one that
    follows the master. ``retries`` × ``backoff_cap_s`` bounds how long a
    command waits out a failover (about 10 s by default; the streamer asks
    for less, since its loop must not stall)."""
    import redis

    target = parse_redis_url(url)
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": min(socket_timeout_s, 1.0),
        **_retry_kwargs(retries=retries, backoff_cap_s=backoff_cap_s, asyncio=False),
    }
    if not target.is_sentinel:
        return redis.Redis.from_url(target.url, **common)
    from redis.sentinel import Sentinel

    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={
            "password": target.sentinel_password,
            "socket_timeout": min(socket_timeout_s, 1.0),
        },
        socket_timeout=socket_timeout_s,
    )
    assert target.service is not None
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        **common,
    )


def async_redis_client(
    url: str, *, retries: int = 20, backoff_cap_s: float = 0.5, socket_timeout_s: float = 2.0
) -> Any:
    """The ``redis.asyncio`` twin of :func:`redis_client`."""
    import redis.asyncio

    target = parse_redis_url(url)
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": min(socket_timeout_s, 1.0),
        **_retry_kwargs(retries=retries, backoff_cap_s=backoff_cap_s, asyncio=True),
    }
    if not target.is_sentinel:
        return redis.asyncio.Redis.from_url(target.url, **common)
    from redis.asyncio.sentinel import Sentinel

    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={
            "password": target.sentinel_password,
            "socket_timeout": min(socket_timeout_s, 1.0),
        },
        socket_timeout=socket_timeout_s,
    )
    assert target.service is not None
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        **common,
    )


def limits_storage(url: str) -> tuple[str, dict[str, Any]]:
    """The ``limits`` storage URI and options for ``url``: its own sentinel
    storage reads the service name from the path alone and would read
    counters from replicas, so the database and the master are passed here."""
    target = parse_redis_url(url)
    if not target.is_sentinel:
        return "async+" + target.url, {}
    hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
    options: dict[str, Any] = {
        "service_name": target.service,
        "use_replicas": False,
        "db": target.db,
        "socket_timeout": 2.0,
    }
    if target.password:
        options["password"] = target.password
    if target.sentinel_password:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return f"async+redis+sentinel://{hosts}", options
