"""The pages a person sees when something is refused: in dnflow's own look, saying what happened
and what to do, with a way back."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import permission_denied

from searches.models import Search

pytestmark = pytest.mark.django_db


def form_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def log_in(browser: Client) -> None:
    token = form_token(browser.get(reverse("login")).content.decode())
    data = {"username": "alice", "password": "alice-password-1", "csrfmiddlewaretoken": token}
    assert browser.post(reverse("login"), data).status_code == 302


def test_a_form_from_a_page_gone_out_of_date_says_why_and_what_to_do(owner, settings):
    settings.DEBUG = False
    browser = Client(enforce_csrf_checks=True)
    log_in(browser)
    stale = form_token(browser.get(reverse("home")).content.decode())
    # In another tab: log out and in again, which gives the browser a new token.
    browser.post(reverse("logout"), {"csrfmiddlewaretoken": form_token(browser.get(reverse("home")).content.decode())})
    log_in(browser)
    response = browser.post(reverse("home"), {"term": "flood", "source": "sample", "csrfmiddlewaretoken": stale})

    assert response.status_code == 403
    assert not Search.objects.exists()
    text = response.content.decode()
    assert "CSRF verification failed" not in text
    assert "<h1>The page was out of date</h1>" in text
    assert "logged in or out in another tab" in text and "open for a long time" in text
    assert "reload the page, then send the form once more" in text
    assert "If you had chosen a file, choose it again" in text
    assert f'<a href="{reverse("home")}">Back to the searches</a>' in text
    # The site's own page: its stylesheet, its menu, who is logged in.
    assert "dnflow/site.css" in text and 'class="site-header"' in text and owner.get_username() in text


def test_a_refusal_is_a_page_of_the_site_with_a_way_back(rf: RequestFactory, settings):
    from django.contrib.auth.models import AnonymousUser

    settings.DEBUG = False
    request = rf.get("/somewhere/")
    request.user = AnonymousUser()
    response = permission_denied(request, PermissionDenied())

    assert response.status_code == 403
    text = response.content.decode()
    assert "<h1>Not allowed</h1>" in text and "dnflow/site.css" in text
    assert f'<a href="{reverse("home")}">Back to the searches</a>' in text
