"""Redis URLs: one server, or Sentinel (a URL or a list of sentinels)."""

from __future__ import annotations

import pytest

from sonicforge.errors import ConfigurationError
from sonicforge.redis_urls import limits_storage, parse_redis_url, sentinel_url
from sonicforge.settings import Settings


def test_a_sentinel_url_names_sentinels_service_and_database() -> None:
    t = parse_redis_url(
        "redis+sentinel://:s3cret@10.0.0.1:26379,sentinel-b:26380,[::1]/radio/9"
        "?sentinel_password=sp&wait_replicas=2"
    )
    assert t.sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26379))
    assert (t.service, t.db, t.password, t.sentinel_password) == ("radio", 9, "s3cret", "sp")
    assert t.wait_replicas == 2 and t.is_sentinel


def test_through_sentinel_a_change_waits_for_one_replica_by_default() -> None:
    assert parse_redis_url("redis+sentinel://h:26379/radio").wait_replicas == 1
    direct = parse_redis_url("redis://127.0.0.1:6379/3?wait_replicas=1")
    assert direct.wait_replicas == 1 and direct.url == "redis://127.0.0.1:6379/3"
    assert parse_redis_url("redis://127.0.0.1:6379/3").wait_replicas == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h:26379", "names no service"),
        ("redis+sentinel://h:port/radio", "is not a port"),
        ("redis+sentinel://h:70000/radio", "is not a port"),
        ("redis+sentinel://h:26379/radio/x", "is not a number"),
        ("redis+sentinel://h:26379/radio?wait_replicas=-1", "whole number"),
        ("memcached://h:11211", "allowed: redis://"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        parse_redis_url(url)


def test_a_list_of_sentinels_in_settings_becomes_the_url() -> None:
    s = Settings(redis_sentinels="a:26379, b:26379", redis_sentinel_service="radio")
    assert s.redis_url == "redis+sentinel://a:26379,b:26379/radio/0"
    assert sentinel_url(["a:1"], "x", db=2, password="p") == "redis+sentinel://:p@a:1/x/2"
    # An explicit URL wins over the list.
    assert (
        Settings(redis_url="redis://r:6379/0", redis_sentinels="a:1").redis_url
        == "redis://r:6379/0"
    )


def test_the_rate_limiter_reads_counters_from_the_master() -> None:
    uri, options = limits_storage("redis+sentinel://:pw@a:1,b:2/radio/4")
    assert uri == "async+redis+sentinel://a:1,b:2"
    assert options["service_name"] == "radio" and options["db"] == 4
    assert options["use_replicas"] is False and options["password"] == "pw"
    assert limits_storage("redis://h:6379/1") == ("async+redis://h:6379/1", {})


def test_a_lease_renewed_less_than_twice_per_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="at most half"):
        Settings(stream_lease_ttl_s=3.0, stream_lease_renew_s=2.0)
