"""Staff sign-in: argon2 passwords, server-side sessions, CSRF tokens, login throttling."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from quart import Response, current_app, g, redirect, request, url_for

from storefront.store import Store
from storefront.store.backoffice import StaffSession

SESSION_LIFETIME = 8 * 60 * 60  # a working day
LOGIN_CSRF_COOKIE = "sf_login_csrf"


def cookie_name(secure: bool) -> str:
    """The session cookie's name; over https the __Host- prefix pins it to this host."""
    return "__Host-sf_admin" if secure else "sf_admin"


def session_key(cookie_value: str) -> str:
    """What the database stores: a hash, so a leaked table holds no usable cookie."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


class Passwords:
    """argon2id hashing, and a verify that costs the same for unknown accounts."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        """An argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (None: an unknown account)."""
        if self._decoy is None:
            # Checked against when no account matches, so timing does not tell.
            self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        try:
            return self._hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


class LoginThrottle:
    """Failed sign-ins allowed per client address, and per account from anywhere."""

    def __init__(self, per_address: int = 10, per_account: int = 5):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._address = RateLimitItemPerMinute(per_address)
        self._account = RateLimitItemPerMinute(per_account)

    def wait(self, address: str, email: str) -> int | None:
        """Seconds to wait before another attempt, or None if one is allowed now."""
        checks = ((self._address, "addr", address), (self._account, "acct", email.lower()))
        waits = []
        for item, kind, key in checks:
            if not self._limiter.test(item, "login", kind, key):
                reset = self._limiter.get_window_stats(item, "login", kind, key).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None

    def failed(self, address: str, email: str) -> None:
        """Count one failed attempt against the address and the account."""
        self._limiter.hit(self._address, "login", "addr", address)
        self._limiter.hit(self._account, "login", "acct", email.lower())


@dataclass(frozen=True)
class Auth:
    """The back office's sign-in machinery, kept on the app."""

    passwords: Passwords
    throttle: LoginThrottle
    secure: bool

    @property
    def cookie(self) -> str:
        """The session cookie's name."""
        return cookie_name(self.secure)


def auth() -> Auth:
    """The app's Auth."""
    return current_app.extensions["admin_auth"]


def store() -> Store:
    """The app's store."""
    return current_app.extensions["db"]


async def load_staff() -> StaffSession | None:
    """The signed-in staff member of this request, if any."""
    value = request.cookies.get(auth().cookie)
    if not value or len(value) > 100:
        return None
    return await store().staff_session(session_key(value))


async def sign_in(response: Response, user_id: int) -> None:
    """Start a fresh session (a new id: any id set before login is never reused)."""
    old = request.cookies.get(auth().cookie)
    if old:
        await store().close_staff_session(session_key(old))
    value = secrets.token_urlsafe(32)
    await store().open_staff_session(
        session_key(value), user_id, secrets.token_urlsafe(32), SESSION_LIFETIME
    )
    response.set_cookie(
        auth().cookie,
        value,
        max_age=SESSION_LIFETIME,
        path="/",
        secure=auth().secure,
        httponly=True,
        samesite="Strict",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")


async def sign_out(response: Response) -> None:
    """End this request's session and forget the cookie."""
    value = request.cookies.get(auth().cookie)
    if value:
        await store().close_staff_session(session_key(value))
    response.delete_cookie(auth().cookie, path="/", secure=auth().secure, httponly=True)


def csrf_ok(expected: str, sent: str | None) -> bool:
    """Whether the form's token is the session's (constant time)."""
    return bool(sent) and hmac.compare_digest(expected.encode(), str(sent).encode())


def to_login() -> Response:
    """Send an anonymous request to the sign-in page (htmx: HX-Redirect)."""
    target = url_for("admin.login")
    if request.headers.get("HX-Request") == "true":
        return Response("", status=204, headers={"HX-Redirect": target})
    return redirect(target, 303)


def staff() -> StaffSession:
    """The signed-in staff member (views behind the guard only)."""
    return g.staff
