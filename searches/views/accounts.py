"""Log-in with a brake on password guessing.

At most LOGIN_FAILURE_LIMIT passwords are checked for one username from one address within
LOGIN_FAILURE_WINDOW seconds (a success starts the count again); further attempts are refused
without checking the password.

The count lives in the "logins" cache, Django's DatabaseCache (settings.CACHES; its table is made
by the migration searches 0006): every web process shares it, and the web needs the database
anyway, where Redis may be down. Each attempt takes one of LIMIT numbered slots with cache.add,
which the table's primary key makes atomic, before the password is checked: parallel requests to
several processes cannot check more than LIMIT passwords, and no read-then-write can lose a count.
"""

from __future__ import annotations

import hashlib

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import caches
from django.http import HttpRequest

LOGIN_FAILURE_LIMIT = 5
LOGIN_FAILURE_WINDOW = 15 * 60
LOGIN_CACHE = "logins"


def _client_ip(request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wants it to be unless a proxy we
    # trust rewrites it, and a brake that the attacker can reset is no brake.
    return (request.META.get("REMOTE_ADDR") if request is not None else "") or "unknown"


def _failure_key(request: HttpRequest | None, username: str) -> str:
    who = f"{_client_ip(request)}\n{username.strip().lower()}".encode()
    return "dnflow:login-failures:" + hashlib.sha256(who).hexdigest()


def _slots(key: str) -> list[str]:
    return [f"{key}:{number}" for number in range(1, LOGIN_FAILURE_LIMIT + 1)]


def take_attempt(key: str) -> bool:
    """Take one of the window's attempts; False when all are taken."""
    cache = caches[LOGIN_CACHE]
    return any(cache.add(slot, 1, LOGIN_FAILURE_WINDOW) for slot in _slots(key))


def forget_attempts(key: str) -> None:
    caches[LOGIN_CACHE].delete_many(_slots(key))


class RateLimitedLoginMixin:
    """For AuthenticationForm and its admin subclass: count attempts, refuse when over the limit."""

    too_many_message = (
        "Too many failed log-in attempts for this username from your address. For your safety, "
        "log-in is paused for 15 minutes: try again later, or ask an administrator to reset your password."
    )

    def clean(self):
        username = self.data.get("username", "") or ""
        if not (username and self.data.get("password")):
            return super().clean()  # no password is checked: the empty field is the error
        key = _failure_key(self.request, username)
        if not take_attempt(key):
            raise forms.ValidationError(self.too_many_message, code="too_many_attempts")
        cleaned = super().clean()  # a wrong password raises: its attempt stays taken
        if self.get_user() is not None:
            forget_attempts(key)
        return cleaned


class RateLimitedAuthenticationForm(RateLimitedLoginMixin, AuthenticationForm):
    pass


class RateLimitedAdminAuthenticationForm(RateLimitedLoginMixin, AdminAuthenticationForm):
    pass


login_view = LoginView.as_view(authentication_form=RateLimitedAuthenticationForm, redirect_authenticated_user=True)
