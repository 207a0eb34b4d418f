"""Reconcile: searches saved while Redis was down get queued, lost searches are recovered, boundedly."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import django_rq
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rq.job import Job, JobStatus

from searches import queue, services
from searches.models import Search, Status

from .worker_helpers import is_done, newest_run, redis_for_tests

DEAD_REDIS = {"default": {"URL": "redis://127.0.0.1:1/0"}}  # nothing listens on port 1


@pytest.fixture
def redis_db(settings):
    with redis_for_tests(settings):
        yield


def _queue():
    return django_rq.get_queue("default")


def _lose_worker(search: Search) -> None:
    """What a dead worker leaves: a running run with no process, no heartbeat and no job."""
    run = newest_run(search)
    if run.status == Status.QUEUED:
        run.runs().claim()
    run.runs().update(started=timezone.now() - timedelta(minutes=5), rq_job_id="")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_search_created_while_redis_is_down_is_saved_then_queued_by_reconcile_andnewest_run(workers, settings):
    good = settings.RQ_QUEUES
    settings.RQ_QUEUES = DEAD_REDIS
    search = services.create_search(term="climate", source="sample")

    assert search.queued is False
    run = newest_run(search)
    assert "Redis could not be reached" in run.step and "reconcile_searches" in run.step
    assert run.status == Status.QUEUED and run.rq_job_id == ""
    with pytest.raises(CommandError, match="Redis could not be reached at .* Start Redis or fix REDIS_URL"):
        call_command("reconcile_searches")

    settings.RQ_QUEUES = good
    out = StringIO()
    call_command("reconcile_searches", stdout=out)
    assert f"queued: #{search.pk}" in out.getvalue()
    run = newest_run(search)
    assert Job.fetch(run.rq_job_id, connection=django_rq.get_connection("default")).get_status() == "queued"
    assert run.step == "Waiting for a worker"

    # A second sweep (another worker, the admin, cron) adds no second job.
    out = StringIO()
    call_command("reconcile_searches", stdout=out)
    assert "nothing to do" in out.getvalue()
    assert _queue().count == 1

    workers.start(1)
    workers.wait_for(lambda: is_done(search.pk), timeout=60, what="the search finishes")
    assert Search.objects.get(pk=search.pk).status == Status.FINISHED


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_starting_worker_queues_what_never_reached_redis_and_recovers_lost_runs(workers, settings):
    good = settings.RQ_QUEUES
    settings.RQ_QUEUES = DEAD_REDIS
    never_queued = services.create_search(term="climate", source="sample")
    settings.RQ_QUEUES = good
    # Running when every worker died: no process, no heartbeat, no job.
    lost = services.create_search(term="flood", source="sample", enqueue=False)
    _lose_worker(lost)

    (worker,) = workers.start(1)
    workers.wait_for(lambda: is_done(never_queued.pk) and is_done(lost.pk), timeout=60, what="both finish")

    assert "Reconcile at start: queued: #" in worker.log()
    for search in (never_queued, lost):
        assert newest_run(search).status == Status.FINISHED, newest_run(search).error
    assert newest_run(lost).events.filter(task_family="Worker", event="note").count() == 1


@pytest.mark.django_db(transaction=True)
def test_web_form_tells_the_person_when_the_search_could_not_be_queued(client, owner, settings, redis_db):
    settings.RQ_QUEUES = DEAD_REDIS
    client.force_login(owner)
    response = client.post(reverse("home"), {"term": "climate", "source": "sample"}, follow=True)

    search = Search.objects.get(owner=owner)
    assert search.status == Status.QUEUED
    page = response.content.decode()
    assert "Search saved but not started yet" in page
    assert "Redis could not be reached" in page


@pytest.mark.django_db
def test_admin_action_reconciles_the_selected_searches(admin_client, settings, redis_db):
    good = settings.RQ_QUEUES
    settings.RQ_QUEUES = DEAD_REDIS
    search = services.create_search(term="climate", source="sample")
    url = reverse("admin:searches_search_changelist")
    form = {"action": "reconcile", "_selected_action": [search.pk]}

    response = admin_client.post(url, form, follow=True)
    assert "Redis could not be reached" in response.content.decode()
    assert newest_run(search).rq_job_id == ""

    settings.RQ_QUEUES = good
    response = admin_client.post(url, form, follow=True)
    assert f"Reconcile: queued: #{search.pk}." in response.content.decode()
    assert newest_run(search).rq_job_id in _queue().job_ids


@pytest.mark.django_db
def test_a_search_that_keeps_losing_its_worker_fails_with_the_reason(settings, redis_db):
    settings.DNFLOW_LOST_SEARCH_RETRIES = 1
    search = services.create_search(term="climate", source="sample", enqueue=False)

    _lose_worker(search)
    outcome = services.reconcile_searches([search.pk])
    assert outcome.requeued == [search.pk]
    run = newest_run(search)
    assert run.status == Status.QUEUED and run.rq_job_id in _queue().job_ids
    assert "Completed steps are kept" in run.step

    _lose_worker(search)
    outcome = services.reconcile_searches([search.pk])
    assert outcome.failed == [search.pk]
    run = newest_run(search)
    assert run.status == Status.FAILED
    assert "stopped unexpectedly 2 times in a row" in run.error
    assert "Run it again to resume" in run.error

    # A person's re-run gets the full allowance back.
    services.rerun_search(Search.objects.get(pk=search.pk), enqueue=False)
    assert newest_run(search).times_lost == 0
    _lose_worker(search)
    assert services.reconcile_searches([search.pk]).requeued == [search.pk]


@pytest.mark.django_db
def test_the_count_of_lost_workers_is_the_run_s_own(settings, redis_db):
    """A later run of the search starts with the full allowance, whatever happened to an earlier one."""
    settings.DNFLOW_LOST_SEARCH_RETRIES = 1
    search = services.create_search(term="climate", source="sample", enqueue=False)
    _lose_worker(search)
    services.reconcile_searches([search.pk])
    first = newest_run(search)
    first.runs().claim()
    first.runs().finish()
    second = services.collect_again(Search.objects.get(pk=search.pk), enqueue=False)
    assert (first.times_lost, second.times_lost) == (1, 0)
    _lose_worker(search)
    assert services.reconcile_searches([search.pk]).requeued == [search.pk]


@pytest.mark.django_db
def test_a_run_that_outlived_its_job_timeout_is_failed_with_that_reason(settings, redis_db):
    settings.DNFLOW_JOB_TIMEOUT = 30
    search = services.create_search(term="climate", source="sample", enqueue=False)
    job_id = queue.enqueue_run(search.latest_run_id)
    # rq's worker killed the work horse after the timeout (a plain rq worker): nobody recorded why.
    run = newest_run(search)
    run.runs().claim(job_id=job_id)
    run.runs().update(started=timezone.now() - timedelta(minutes=2))
    _queue().remove(job_id)
    Job.fetch(job_id, connection=django_rq.get_connection("default")).set_status(JobStatus.FAILED)

    outcome = services.reconcile_searches([search.pk])

    assert outcome.failed == [search.pk]
    assert "took longer than the job timeout (30 s, setting DNFLOW_JOB_TIMEOUT)" in newest_run(search).error
