"""``sonicforge serve`` (the API under uvicorn) and ``sonicforge set-role``.

Migrations run once here, before the workers start, so several workers
never race to upgrade the app database; the development JWT key is made
here too, so every worker signs with the same one.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.db.session import migrate
    from serving.logs import configure_logging
    from sonicforge.settings import get_settings

    settings = get_settings()
    settings.check_serving()
    configure_logging(settings.log_level)
    if not args.no_migrate:
        migrate(settings.resolved_app_database_url)
    settings.resolved_jwt_secret()
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers or settings.api_workers,
        reload=args.reload,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        log_config=None,  # the app installs JSON logging in each worker
        access_log=False,  # the app writes its own access log with request ids
        server_header=False,
    )
    return 0


def cmd_set_role(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from serving.db.models import User
    from serving.db.session import Database
    from serving.db.types import utcnow
    from serving.security.permissions import Role
    from sonicforge.settings import get_settings

    role = Role(args.role)
    db = Database(get_settings().resolved_app_database_url)
    db.migrate()
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == args.email.lower()))
        if user is None:
            print(f"error: no account with the email {args.email!r}; register it first")
            return 2
        user.role, user.updated_at = role.value, utcnow()
        session.commit()
    print(f"{args.email}: {role.value}")
    return 0


def add_parser(sub: Any) -> None:
    roles = ["listener", "subscriber", "creator", "moderator", "analyst", "operator", "admin"]
    sp = sub.add_parser("serve", help="run the API (uvicorn, app factory serving.app:create_app)")
    sp.add_argument("--host", default=None, help="default: SONICFORGE_API_HOST (127.0.0.1)")
    sp.add_argument("--port", type=int, default=None, help="default: SONICFORGE_API_PORT (8000)")
    sp.add_argument("--workers", type=int, default=None, help="default: SONICFORGE_API_WORKERS (1)")
    sp.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    sp.add_argument("--no-migrate", action="store_true", help="do not upgrade the app database")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("set-role", help="give an account a role (e.g. the first admin)")
    sp.add_argument("email")
    sp.add_argument("role", choices=roles)
    sp.set_defaults(func=cmd_set_role)
