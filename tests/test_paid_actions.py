"""Buttons that read the X API again, at a cost (Collect again, Recheck availability), ask first
and say what it costs; one that reads nothing paid for goes ahead."""

from __future__ import annotations

import pytest
from django.urls import reverse

from searches.models import Source
from tests.web_helpers import make_search

pytestmark = pytest.mark.django_db


def test_reading_x_again_at_a_cost_is_asked_first_with_the_cost_and_a_free_one_is_not(
    owner_client, owner, settings, empty_queue
):
    """ "Collect again" and "Recheck availability" posted at once: every post paid for again, unsaid."""
    settings.DNFLOW_PRICE_PER_POST = 0.005
    live = make_search(owner, source=Source.RECENT, term="#kpop", count=400)
    runs = live.runs.count()

    # The page's button posts; without JavaScript too, what comes back is the question.
    asked = owner_client.post(reverse("search_collect_again", args=[live.pk]))
    page = asked.content.decode()
    assert asked.status_code == 200 and "Collect #" in page
    assert "up to 400 posts from the X API again" in page and "$2.00" in page and "Collect new posts" in page
    assert live.runs.count() == runs, "nothing is read before the person agrees"
    agreed = owner_client.post(reverse("search_collect_again", args=[live.pk]), {"confirmed": "yes"})
    assert agreed.status_code == 302 and live.runs.count() == runs + 1

    archive = make_search(owner, source=Source.ARCHIVE, term="", archive_path=str(settings.BASE_DIR / "README.md"))
    recheck = owner_client.get(reverse("search_recheck", args=[archive.pk])).content.decode()
    posts = archive.results_run.num_posts
    assert f"This looks each of its {posts:,} post" in recheck and f"${posts * 0.005:.2f}" in recheck
    # Collecting an archive again reads nothing from X: no question.
    free = owner_client.post(reverse("search_collect_again", args=[archive.pk]))
    assert free.status_code == 302 and archive.runs.count() == 2


def test_the_admin_s_actions_that_read_x_again_ask_first_with_the_cost(
    client, staff_user, owner, settings, empty_queue
):
    from searches.models import Status

    client.force_login(staff_user)
    settings.DNFLOW_PRICE_PER_POST = 0.005
    live = make_search(owner, source=Source.RECENT, term="#kpop", count=400)
    failed = make_search(owner, source=Source.RECENT, term="#flood", count=100, status=Status.FAILED)
    changelist = reverse("admin:searches_search_changelist")

    def act(action: str, *searches, **extra):
        return client.post(changelist, {"action": action, "_selected_action": [s.pk for s in searches], **extra})

    for action in ("collect_again", "run_again", "recheck"):
        asked = act(action, live)
        page = asked.content.decode()
        assert asked.status_code == 200 and "Read from the X API again, at a cost?" in page, action
        assert live.runs.count() == 1, f"{action} read X before anyone agreed"
    assert "$2.00" in act("collect_again", live).content.decode()

    agreed = act("collect_again", live, spend="yes")
    assert agreed.status_code == 302 and live.runs.count() == 2
    # A failed run resumes: what it stored is not read again, nothing to ask.
    resumed = act("run_again", failed)
    assert resumed.status_code == 302 and failed.runs.count() == 1
    failed.refresh_from_db()
    assert failed.latest_run.status == Status.QUEUED
