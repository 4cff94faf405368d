"""Signing in and out.

Sign-in is a POST with the name, the password and the sign-in form's CSRF token; on success
a new server-side session begins and the browser gets its token in a cookie (a new CSRF token
with it), so a token from before sign-in is useless after it. Signing out deletes the session
on the server: the cookie, even a copy of it, no longer works.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.web.context import CsrfError, WebContext
from services.web.csrf import LOGIN_COOKIE, same_token
from services.web.sessions import SESSION_COOKIE
from services.web.users import ROLES

MAX_FIELD = 200


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

    @router.get("/sign-in", response_class=HTMLResponse)
    def sign_in_form() -> HTMLResponse:
        return sign_in_page()

    @router.post("/sign-in", response_model=None)
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        expected = context.logins.token(request.cookies.get(LOGIN_COOKIE))
        if not same_token(expected, field(form, "csrf")):
            raise CsrfError
        user = context.users.authenticate(field(form, "name"), field(form, "password"))
        if user is None:
            return sign_in_page("Unknown name or wrong password.", status_code=401)
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
