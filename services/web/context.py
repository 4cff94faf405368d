"""What every route of the web workplace needs, passed in once: settings, database, keys,
users, the access log, the session store, the integrity runs and the templates — and the
checks that a request is signed in, has the right role and carries a valid CSRF token.

Routes get a :class:`WebContext` from the app factory (no module-level singletons), call
:meth:`WebContext.viewer` first and :meth:`WebContext.logged` before showing audit data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from services.audit.model import AuditStore
from services.audit.store import SqlAuditStore
from services.audit.verify import Verification
from services.core.keys import KeyStore
from services.web.access_log import AccessLog
from services.web.csrf import LoginTokens, same_token
from services.web.formats import breakable, when
from services.web.index_lag import IndexLagSource, no_kafka
from services.web.integrity import IntegrityRuns
from services.web.sessions import (
    SESSION_COOKIE,
    Clock,
    Session,
    SessionPolicy,
    SqlSessionStore,
    utc_now,
)
from services.web.sign_in_audit import SignInAudit
from services.web.throttle import SqlSignInThrottle, ThrottlePolicy
from services.web.users import User, UserStore

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """``secret`` signs the sign-in cookie and derives CSRF tokens (>= 32 bytes);
    ``session_seconds`` is how long a session lives at most after sign-in, ``idle_seconds``
    how long it lives unused; ``secure_cookies`` marks cookies Secure (on behind HTTPS, off for
    plain local HTTP); ``kdf_cost`` is scrypt's log2 N for passwords; ``throttle`` how failed
    sign-ins back off (:mod:`services.web.throttle`)."""

    secret: bytes
    session_seconds: int = 8 * 60 * 60
    idle_seconds: int = 30 * 60
    secure_cookies: bool = False
    kdf_cost: int = 15
    title: str = "Schakel — privacy officer"
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)


class NotSignedInError(Exception):
    """No valid session: pages redirect to the sign-in page, JSON answers 401."""


class ForbiddenError(Exception):
    """Signed in, but the role may not use this route: 403."""


class CsrfError(Exception):
    """A form POST without the session's CSRF token: 403."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a request and their session."""

    user: User
    session: Session


class WebContext:
    """The dependencies of the routes, built once by :func:`services.web.app.create_web_app`."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyStore,
        settings: WebSettings,
        check: Callable[[], Verification],
        clock: Clock = utc_now,
        audit: AuditStore | None = None,
        index_lag: IndexLagSource = no_kafka,
    ) -> None:
        self.engine = engine
        self.clock = clock
        """What time it is (sessions, integrity runs, which month is in progress)."""
        self.index_lag = index_lag
        """How far the audit index is behind the audit log (the integrity page)."""
        self.keys = keys
        self.settings = settings
        self.users = UserStore(engine, kdf_cost=settings.kdf_cost)
        self.access = AccessLog(engine)
        self.throttle = SqlSignInThrottle(engine, settings.secret, settings.throttle, clock)
        self.sign_in_audit = SignInAudit(audit or SqlAuditStore(engine), settings.secret, clock)
        self.logins = LoginTokens(settings.secret)
        policy = SessionPolicy(idle=settings.idle_seconds, absolute=settings.session_seconds)
        self.sessions = SqlSessionStore(engine, settings.secret, policy, clock)
        self.integrity = IntegrityRuns(engine, check, clock)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["when"] = when
        self.templates.filters["breakable"] = breakable

    def viewer(self, request: Request, roles: Collection[str]) -> Viewer:
        """The request's signed-in user, if their role is one of ``roles``."""
        viewer = self.signed_in(request)
        if viewer is None:
            raise NotSignedInError
        if viewer.user.role not in roles:
            raise ForbiddenError
        return viewer

    def signed_in(self, request: Request) -> Viewer | None:
        """The request's signed-in user whatever their role, or ``None`` (for pages that
        anyone may see, such as "not found", to show the menu of those signed in)."""
        session = self.sessions.find(request.cookies.get(SESSION_COOKIE))
        user = None if session is None else self.users.get(session.user)
        return None if session is None or user is None else Viewer(user, session)

    def check_csrf(self, viewer: Viewer, offered: str | None) -> None:
        if not same_token(viewer.session.csrf, offered):
            raise CsrfError

    def logged(self, viewer: Viewer, route: str, detail: Mapping[str, Any]) -> None:
        """Record that ``viewer`` was shown audit data by ``route`` with ``detail``."""
        self.access.write(viewer.user.name, route, detail)

    def page(
        self, template: str, viewer: Viewer | None, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        """Render ``template`` with the viewer's name, role and CSRF token available."""
        html = self.templates.get_template(template).render(
            title=self.settings.title,
            viewer=viewer,
            csrf=viewer.session.csrf if viewer else "",
            **values,
        )
        return HTMLResponse(html, status_code=status_code)

    def set_session(self, response: RedirectResponse, cookie: str) -> None:
        self.set_cookie(response, SESSION_COOKIE, cookie)

    def set_cookie(self, response: HTMLResponse | RedirectResponse, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=self.settings.session_seconds,
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
            path="/",
        )
