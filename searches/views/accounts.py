"""Log-in with a brake on password guessing.

After LOGIN_FAILURE_LIMIT failed attempts for one username from one address within
LOGIN_FAILURE_WINDOW seconds, further attempts are refused without checking the password until
the window ends. The counter lives in Django's cache: the default local-memory cache counts per
process, which is enough for one web process; several processes need a shared cache (CACHES
pointing at Redis) to share the count.
"""

from __future__ import annotations

import hashlib

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest

LOGIN_FAILURE_LIMIT = 5
LOGIN_FAILURE_WINDOW = 15 * 60


def _client_ip(request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wants it to be unless a proxy we
    # trust rewrites it, and a brake that the attacker can reset is no brake.
    return (request.META.get("REMOTE_ADDR") if request is not None else "") or "unknown"


def _failure_key(request: HttpRequest | None, username: str) -> str:
    who = f"{_client_ip(request)}\n{username.strip().lower()}".encode()
    return "dnflow:login-failures:" + hashlib.sha256(who).hexdigest()


class RateLimitedLoginMixin:
    """For AuthenticationForm and its admin subclass: count failures, refuse when over the limit."""

    too_many_message = (
        "Too many failed log-in attempts for this username from your address. For your safety, "
        "log-in is paused for 15 minutes: try again later, or ask an administrator to reset your password."
    )

    def clean(self):
        username = self.data.get("username", "") or ""
        key = _failure_key(self.request, username)
        if (cache.get(key) or 0) >= LOGIN_FAILURE_LIMIT:
            raise forms.ValidationError(self.too_many_message, code="too_many_attempts")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if cache.add(key, 1, LOGIN_FAILURE_WINDOW) is False:
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr: start again
                    cache.set(key, 1, LOGIN_FAILURE_WINDOW)
            raise
        cache.delete(key)
        return cleaned


class RateLimitedAuthenticationForm(RateLimitedLoginMixin, AuthenticationForm):
    pass


class RateLimitedAdminAuthenticationForm(RateLimitedLoginMixin, AdminAuthenticationForm):
    pass


login_view = LoginView.as_view(authentication_form=RateLimitedAuthenticationForm, redirect_authenticated_user=True)
