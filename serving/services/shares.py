"""Share codes and the links that carry them to social networks.

A code is 72 random bits (12 URL-safe characters): short enough for a
tweet, far too many to guess. Every link carries UTM parameters naming the
network, so the events table can tell which network brought a listener.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlencode

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.db.models import Share
from serving.exceptions import NotFoundError
from serving.schemas.shares import ShareDetail, SharePublic, ShareUrls
from serving.schemas.tracks import TrackBase, TrackPublic
from serving.services.outbox import record_event

CODE_BYTES = 9
NETWORKS = ("x", "facebook", "whatsapp", "telegram", "reddit", "linkedin", "email")


def new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def landing_url(web_base_url: str, track_id: str, code: str, source: str | None = None) -> str:
    params = {"track": track_id, "ref": code}
    if source is not None:
        params |= {"utm_source": source, "utm_medium": "social", "utm_campaign": "track_share"}
        if source == "email":
            params["utm_medium"] = "email"
        params["utm_content"] = code
    return f"{web_base_url.rstrip('/')}/listen?{urlencode(params)}"


def share_urls(web_base_url: str, track: TrackBase, code: str) -> ShareUrls:
    text = f"Listening to a {track.genre.replace('_', ' ')} track on SonicForge radio"

    def url(source: str) -> str:
        return landing_url(web_base_url, track.track_id, code, source)

    q = quote
    return ShareUrls(
        x=f"https://twitter.com/intent/tweet?text={q(text)}&url={q(url('x'), safe='')}",
        facebook=f"https://www.facebook.com/sharer/sharer.php?u={q(url('facebook'), safe='')}",
        whatsapp=f"https://wa.me/?text={q(text + ' ' + url('whatsapp'), safe='')}",
        telegram=f"https://t.me/share/url?url={q(url('telegram'), safe='')}&text={q(text)}",
        reddit=f"https://www.reddit.com/submit?url={q(url('reddit'), safe='')}&title={q(text)}",
        linkedin=f"https://www.linkedin.com/sharing/share-offsite/?url={q(url('linkedin'), safe='')}",
        email=f"mailto:?subject={q(text)}&body={q(url('email'), safe='')}",
    )


def create_share(
    session: Session, track: TrackPublic, *, user_id: str | None, web_base_url: str
) -> SharePublic:
    for _ in range(3):  # a collision of 72-bit codes is all but impossible
        share = Share(code=new_code(), track_id=track.track_id, user_id=user_id)
        session.add(share)
        try:
            session.flush()
            break
        except IntegrityError:
            session.rollback()
    else:  # pragma: no cover
        raise RuntimeError("could not find a free share code")
    record_event(
        session,
        "share_created",
        user_id=user_id,
        track_id=track.track_id,
        properties={"code": share.code},
    )
    session.commit()
    return SharePublic(
        code=share.code,
        track_id=share.track_id,
        landing_url=landing_url(web_base_url, share.track_id, share.code),
        created_at=share.created_at,
    )


def open_share(
    session: Session,
    code: str,
    tracks: dict[str, TrackPublic],
    *,
    web_base_url: str,
    source: str | None,
    referrer: str | None,
    user_id: str | None,
) -> ShareDetail:
    """The shared track and its links; counts a click and records it."""
    share = session.scalar(select(Share).where(Share.code == code))
    track = tracks.get(share.track_id) if share is not None else None
    if share is None or track is None:
        raise NotFoundError(f"no share with the code {code!r}")
    session.execute(update(Share).where(Share.code == code).values(clicks=Share.clicks + 1))
    record_event(
        session,
        "share_click",
        user_id=user_id,
        track_id=share.track_id,
        properties={"code": code, "utm_source": source, "referrer": referrer},
    )
    session.commit()
    session.refresh(share)
    base = TrackBase.model_validate(track.model_dump(include=set(TrackBase.model_fields)))
    return ShareDetail(
        code=share.code,
        track_id=share.track_id,
        landing_url=landing_url(web_base_url, share.track_id, share.code),
        created_at=share.created_at,
        track=base,
        share_urls=share_urls(web_base_url, base, share.code),
        clicks=share.clicks,
    )
