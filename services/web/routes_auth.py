"""Signing in and out.

Sign-in is a POST with the name, the password and the sign-in form's CSRF token; on success
a new server-side session begins and the browser gets its token in a cookie (a new CSRF token
with it), so a token from before sign-in is useless after it. Failed sign-ins are throttled
per account and per client (:mod:`services.web.throttle`: while a back-off runs the answer is
429 with ``Retry-After``, whatever the password) and written to the audit log
(:mod:`services.web.sign_in_audit`). Signing out deletes the session
on the server: the cookie, even a copy of it, no longer works.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.web.context import CsrfError, WebContext
from services.web.csrf import LOGIN_COOKIE, same_token
from services.web.sessions import SESSION_COOKIE
from services.web.users import ROLES

MAX_FIELD = 200


def client_address(request: Request) -> str:
    """The address the request came from, as the server saw it (behind a proxy: what the
    server was told to trust, e.g. uvicorn's ``--forwarded-allow-ips``)."""
    return request.client.host if request.client is not None else "unknown"


def field(form: FormData, name: str) -> str:
    """A text field of a submitted form, cut to a sane length ('' if absent)."""
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def routes(context: WebContext) -> APIRouter:
    router = APIRouter()

    def sign_in_page(error: str | None = None, status_code: int = 200) -> HTMLResponse:
        token, cookie = context.logins.new()
        response = context.page(
            "sign_in.html", None, status_code=status_code, login_csrf=token, error=error
        )
        context.set_cookie(response, LOGIN_COOKIE, cookie)
        return response

    def throttled(wait: float) -> HTMLResponse:
        seconds = max(1, math.ceil(wait))
        response = sign_in_page(
            f"Too many failed sign-ins. Try again in {seconds} seconds.", status_code=429
        )
        response.headers["Retry-After"] = str(seconds)
        return response

    @router.get("/sign-in", response_class=HTMLResponse)
    def sign_in_form() -> HTMLResponse:
        return sign_in_page()

    @router.post("/sign-in", response_model=None)
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        expected = context.logins.token(request.cookies.get(LOGIN_COOKIE))
        if not same_token(expected, field(form, "csrf")):
            raise CsrfError
        name, client = field(form, "name"), client_address(request)
        wait = context.throttle.wait(name, client)
        if wait > 0:  # refused before the password is even looked at
            return throttled(wait)
        user = context.users.authenticate(name, field(form, "password"))
        if user is None:
            backoff = context.throttle.failed(name, client)
            known = name if context.users.get(name) is not None else None
            context.sign_in_audit.refused(known, client, backoff)
            return sign_in_page("Unknown name or wrong password.", status_code=401)
        context.throttle.succeeded(name)
        context.sessions.end(request.cookies.get(SESSION_COOKIE))  # the one it replaces
        _, cookie = context.sessions.start(user.name)
        response = RedirectResponse("/", status_code=303)
        context.set_session(response, cookie)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> RedirectResponse:
        viewer = context.viewer(request, ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        context.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router
