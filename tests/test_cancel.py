"""Cancelling searches: a running one stops, a queued one never runs, and cancelled stays cancelled."""

from __future__ import annotations

import django_rq
import pytest
from django.utils import timezone
from rq.job import Job

from searches import jobs, services
from searches.models import Search, Status

from .worker_helpers import REAL_ARCHIVE, big_archive, task_events, worker_pool

# Big enough that a run is still summarising when the test acts on it, now that the summary pass
# uses every core (100 copies could finish before the watchdog's next beat).
MID_RUN_COPIES = 300


@pytest.fixture
def workers(transactional_db, settings, tmp_path):
    with worker_pool(settings, tmp_path) as pool:
        yield pool


def _job_status(job_id: str) -> str:
    return Job.fetch(job_id, connection=django_rq.get_connection("default")).get_status()


def _done(pk: int) -> bool:
    return Search.objects.get(pk=pk).is_done


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_running_search_and_the_queued_one_never_runs(workers):
    workers.start(1)
    running = services.create_search(source="archive", archive_path=str(big_archive(MID_RUN_COPIES)))
    workers.wait_for(lambda: task_events(running, "start", "SummarisePosts"), timeout=60, what="the run is mid-way")
    waiting = services.create_search(source="archive", archive_path=str(REAL_ARCHIVE))
    assert _job_status(waiting.rq_job_id) == "queued"  # the only worker is busy

    services.cancel_search(waiting)
    services.cancel_search(running)

    workers.wait_for(lambda: _job_status(running.rq_job_id) == "stopped", timeout=15, what="rq stops the job")
    assert _job_status(waiting.rq_job_id) == "canceled"
    # The worker is free again and takes the next search; the cancelled one was skipped, never run.
    after = services.create_search(term="drought", source="sample")
    workers.wait_for(lambda: _done(after.pk), timeout=60, what="the next search finishes")
    assert Search.objects.get(pk=after.pk).status == Status.FINISHED

    running.refresh_from_db()
    assert running.status == Status.CANCELLED and running.step == "Cancelled"
    assert not task_events(running, "success", "SummarisePosts")
    assert not (running.output_dir / "summary.json").exists()
    assert not (running.output_dir / f"{running.folder}.zip").exists()

    waiting.refresh_from_db()
    assert waiting.status == Status.CANCELLED
    assert waiting.started is None and waiting.folder == ""
    assert not waiting.events.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_cancel_whose_stop_message_is_lost_still_stops_the_work_horse(workers):
    (worker,) = workers.start(1)
    search = services.create_search(source="archive", archive_path=str(big_archive(MID_RUN_COPIES)))
    workers.wait_for(lambda: task_events(search, "start", "SummarisePosts"), timeout=60, what="the run is mid-way")
    search.refresh_from_db()

    # What cancel does first; rq's stop-job message is never sent (as if the worker missed it).
    Search.objects.filter(pk=search.pk).update(status=Status.CANCELLED, step="Cancelled")

    # The run notices within seconds (the pipeline's progress check or the work horse's watchdog).
    workers.wait_for(lambda: _job_status(search.rq_job_id) != "started", timeout=15, what="the run stops")
    assert not task_events(search, "success", "SummarisePosts")
    assert not (search.output_dir / f"{search.folder}.zip").exists()
    assert Search.objects.get(pk=search.pk).status == Status.CANCELLED
    assert worker.proc.poll() is None  # the worker itself goes on


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_search_was_taken_over_ends_its_work_horse(workers):
    (worker,) = workers.start(1)
    search = services.create_search(source="archive", archive_path=str(big_archive(MID_RUN_COPIES)))
    workers.wait_for(lambda: task_events(search, "start", "SummarisePosts"), timeout=60, what="the run is mid-way")

    # As if the search had been recovered and claimed by another worker: a newer run owns it now.
    Search.objects.filter(pk=search.pk).update(started=timezone.now())

    # The watchdog kills its own work horse: the job dies instead of finishing.
    workers.wait_for(lambda: _job_status(search.rq_job_id) == "failed", timeout=15, what="the work horse dies")
    assert not task_events(search, "success", "SummarisePosts")
    assert worker.proc.poll() is None


@pytest.mark.django_db
def test_the_outcome_of_a_cancelled_run_never_overwrites_cancelled():
    search = services.create_search(term="climate", source="sample", enqueue=False)
    started = jobs.claim(search.pk)
    assert started is not None
    services.cancel_search(Search.objects.get(pk=search.pk))

    jobs.finish(search.pk, ok=True, started=started)
    jobs.finish(search.pk, ok=False, error="boom")

    search.refresh_from_db()
    assert search.status == Status.CANCELLED and search.error == ""
    with pytest.raises(services.ActionRefused, match="already cancelled"):
        services.cancel_search(search)


@pytest.mark.django_db
def test_only_the_recorded_job_can_claim_a_search():
    search = services.create_search(term="climate", source="sample", enqueue=False)
    Search.objects.filter(pk=search.pk).update(rq_job_id="search-job-b")

    assert jobs.claim(search.pk, "search-job-a") is None  # a stale duplicate job
    assert jobs.claim(search.pk, "search-job-b") is not None
    assert jobs.claim(search.pk, "search-job-b") is None  # claimed once
