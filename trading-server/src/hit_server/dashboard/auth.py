"""Who may use the dashboard: the login check, the signed session cookie, CSRF tokens, login rate limit.

- A login gives an API key from API_KEYS or DASHBOARD_PASSWORD; each is compared with every accepted
  secret by `secrets.compare_digest` (no early exit, `api/security.key_matches`).
- The session is a cookie `hit_session` = base64(JSON {exp, sid}) + "." + HMAC-SHA256 of it under the
  session secret: HttpOnly, SameSite=Strict, Path=/dashboard, Secure over https, expiring with `exp`.
  Nothing secret is inside; a forged or expired cookie is simply no session.
- Each session has its own CSRF token, HMAC(secret, "csrf:" + sid): every state-changing form carries
  it in a hidden field and the POST is refused (403) without the right one.
- Login attempts are rate-limited per client address (a token bucket, `KeyRateLimiter`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from hit_server.api.http_errors import TooManyRequests
from hit_server.api.security import KeyRateLimiter, key_matches
from hit_server.settings import Settings

COOKIE = "hit_session"
COOKIE_PATH = "/dashboard"
LOGIN_ATTEMPTS_PER_MINUTE = 10


@dataclass(frozen=True)
class Session:
    sid: str
    expires: int
    csrf: str


class DashboardAuth:
    """The dashboard's secrets and sessions for one app."""

    def __init__(self, settings: Settings) -> None:
        configured = settings.dashboard_session_secret
        secret = configured.get_secret_value() if configured is not None else secrets.token_urlsafe(32)
        self._secret = secret.encode()
        password = settings.dashboard_password
        self._logins = settings.key_values() + (
            (password.get_secret_value(),) if password is not None else ()
        )
        self.lifetime_s = int(settings.dashboard_session_hours * 3600)
        self.limiter = KeyRateLimiter(LOGIN_ATTEMPTS_PER_MINUTE)

    def attempt(self, client: str) -> bool:
        """Take one login attempt for this client address; False when over the limit."""
        try:
            self.limiter.check(client)
        except TooManyRequests:
            return False
        return True

    def accepts(self, given: str) -> bool:
        """Whether `given` is one of the API keys or the dashboard password (constant time)."""
        return bool(given) and key_matches(given, self._logins) is not None

    def new_session(self) -> tuple[str, Session]:
        """A fresh session and its cookie value."""
        expires, sid = int(time.time()) + self.lifetime_s, secrets.token_hex(16)
        body = _b64(json.dumps({"exp": expires, "sid": sid}, separators=(",", ":")).encode())
        cookie = f"{body}.{_b64(self._sign(body.encode()))}"
        return cookie, self._session(sid, expires)

    def session(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or None when absent, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 512:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(_b64(self._sign(body.encode())), signature):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            sid, expires = str(payload["sid"]), int(payload["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= time.time():
            return None
        return self._session(sid, expires)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())

    def _session(self, sid: str, expires: int) -> Session:
        csrf = hmac.new(self._secret, f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()
        return Session(sid, expires, csrf)

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self._secret, b"session:" + data, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
