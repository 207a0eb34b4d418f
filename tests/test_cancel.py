"""Cancelling runs: a running one stops, a queued one never runs, cancelled stays cancelled, and
a cancelled run leaves nothing half-done behind."""

from __future__ import annotations

import django_rq
import pytest
from django.urls import reverse
from django.utils import timezone
from rq.job import Job

from pipeline.contract import temporaries
from searches import services
from searches.models import Search, SearchRun, Status

from .worker_helpers import REAL_ARCHIVE, big_archive, is_done, newest_run, task_events

# Big enough that a run is still summarising when the test acts on it, now that the summary pass
# uses every core (100 copies could finish before the watchdog's next beat).
MID_RUN_COPIES = 300


def _job_status(job_id: str) -> str:
    return Job.fetch(job_id, connection=django_rq.get_connection("default")).get_status()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_running_search_and_the_queued_one_never_runs(workers, client, owner):
    workers.start(1)
    running = services.create_search(owner=owner, source="archive", archive_path=str(big_archive(MID_RUN_COPIES)))
    workers.wait_for(lambda: task_events(running, "start", "SummarisePosts"), timeout=60, what="the run is mid-way")
    waiting = services.create_search(source="archive", archive_path=str(REAL_ARCHIVE))
    assert _job_status(newest_run(waiting).rq_job_id) == "queued"  # the only worker is busy

    services.cancel_search(waiting)
    services.cancel_search(running)

    workers.wait_for(
        lambda: _job_status(newest_run(running).rq_job_id) == "stopped", timeout=15, what="rq stops the job"
    )
    assert _job_status(newest_run(waiting).rq_job_id) == "canceled"
    # The worker is free again and takes the next search; the cancelled one was skipped, never run.
    after = services.create_search(term="drought", source="sample")
    workers.wait_for(lambda: is_done(after.pk), timeout=60, what="the next search finishes")
    assert Search.objects.get(pk=after.pk).status == Status.FINISHED

    run = newest_run(running)
    assert run.status == Status.CANCELLED and run.step == "Cancelled"
    assert not task_events(running, "success", "SummarisePosts")
    assert not (run.folder_path / "summary.json").exists()
    assert not (run.folder_path / f"{run.folder}.zip").exists()
    # The killed work horse's spill files and half-written outputs were removed once it was gone.
    workers.wait_for(lambda: not temporaries(run.folder_path), timeout=15, what="the temporaries are removed")
    # Its page says the step it stopped in was cancelled, not that it runs for ever.
    client.force_login(owner)
    page = client.get(running.get_absolute_url()).content.decode()
    assert '<tr class="task-cancelled">' in page and "running" not in page.split('id="status"')[1]

    waiting_run = newest_run(waiting)
    assert waiting_run.status == Status.CANCELLED
    assert waiting_run.started is None and not waiting_run.folder_path.exists()
    # It never ran: its one event is the cancel, on record.
    assert list(waiting_run.events.values_list("task_family", "event")) == [("Cancel", "note")]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_cancel_whose_stop_message_is_lost_still_stops_the_work_horse(workers):
    (worker,) = workers.start(1)
    search = services.create_search(source="archive", archive_path=str(big_archive(MID_RUN_COPIES)))
    workers.wait_for(lambda: task_events(search, "start", "SummarisePosts"), timeout=60, what="the run is mid-way")
    run = newest_run(search)

    # What cancel does first; rq's stop-job message is never sent (as if the worker missed it).
    run.runs().cancel()

    # The run notices within seconds (the pipeline's progress check or the work horse's watchdog).
    workers.wait_for(lambda: _job_status(run.rq_job_id) != "started", timeout=15, what="the run stops")
    assert not task_events(search, "success", "SummarisePosts")
    assert not (run.folder_path / f"{run.folder}.zip").exists()
    assert newest_run(search).status == Status.CANCELLED
    assert worker.proc.poll() is None  # the worker itself goes on


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_claim_was_taken_over_ends_its_work_horse(workers):
    (worker,) = workers.start(1)
    search = services.create_search(source="archive", archive_path=str(big_archive(MID_RUN_COPIES)))
    workers.wait_for(lambda: task_events(search, "start", "SummarisePosts"), timeout=60, what="the run is mid-way")

    job_id = newest_run(search).rq_job_id

    # As if the run had been recovered and claimed by another worker: a newer claim, of another job, owns it now.
    taken_at = timezone.now()
    SearchRun.objects.filter(pk=search.latest_run_id).update(started=taken_at, rq_job_id="run-claimed-elsewhere")

    # The watchdog kills its own work horse: the job dies instead of finishing.
    workers.wait_for(lambda: _job_status(job_id) == "failed", timeout=15, what="the work horse dies")
    assert not task_events(search, "success", "SummarisePosts")
    assert worker.proc.poll() is None
    # Its worker leaves the run to the claim that owns it.
    run = newest_run(search)
    assert (run.status, run.started, run.rq_job_id) == (Status.RUNNING, taken_at, "run-claimed-elsewhere")


@pytest.mark.django_db
def test_the_outcome_of_a_cancelled_run_never_overwrites_cancelled():
    search = services.create_search(term="climate", source="sample", enqueue=False)
    run = search.latest_run
    run.started = run.runs().claim()
    assert run.started is not None
    services.cancel_search(Search.objects.get(pk=search.pk))

    assert run.this_claim().finish() == 0
    assert run.this_claim().fail("boom") == 0

    run.refresh_from_db()
    assert run.status == Status.CANCELLED and run.error == ""
    with pytest.raises(services.ActionRefused, match="already cancelled"):
        services.cancel_search(Search.objects.get(pk=search.pk))


@pytest.mark.django_db
def test_only_the_recorded_job_can_claim_anewest_run():
    search = services.create_search(term="climate", source="sample", enqueue=False)
    runs = search.latest_run.runs()
    runs.update(rq_job_id="run-job-b")

    assert runs.claim(job_id="run-job-a") is None  # a stale duplicate job
    assert runs.claim(job_id="run-job-b") is not None
    assert runs.claim(job_id="run-job-b") is None  # claimed once


@pytest.mark.django_db
def test_a_search_has_one_active_run_at_a_time(owner):
    search = services.create_search(owner=owner, term="climate", source="sample", enqueue=False)
    with pytest.raises(services.ActionRefused, match="is still queued"):
        services.collect_again(search)
    with pytest.raises(services.ActionRefused, match="is still queued"):
        services.rerun_search(search)
    # Even code that skips the services' checks cannot start a second one: the database refuses.
    from searches.models import RunRefused

    with pytest.raises(RunRefused):
        search.start_run()
    assert search.runs.count() == 1


@pytest.mark.django_db
def test_the_cancel_button_of_a_queued_search(client, owner, empty_queue):
    search = services.create_search(owner=owner, term="climate", source="sample", enqueue=False)
    client.force_login(owner)
    assert client.post(reverse("search_cancel", args=[search.pk])).status_code == 302
    assert newest_run(search).status == Status.CANCELLED
