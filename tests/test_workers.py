"""Real rq workers running real Luigi workflows: several at once, a killed one, the job timeout."""

from __future__ import annotations

import time

import django_rq
import pytest
from rq.job import Job

from searches import services
from searches.models import Status

from .worker_helpers import COMPARED_OUTPUTS, REAL_ARCHIVE, big_archive, is_done, newest_run, task_events

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_four_searches_on_two_workers_all_finish_each_run_once(workers):
    workers.start(2)
    searches = [
        services.create_search(source="archive", archive_path=str(REAL_ARCHIVE)),
        services.create_search(term="climate", source="sample"),
        services.create_search(source="archive", archive_path=str(REAL_ARCHIVE)),
        services.create_search(term="flood", source="sample"),
    ]
    assert all(s.queued for s in searches)

    workers.wait_for(lambda: all(is_done(s.pk) for s in searches), timeout=90, what="four searches finish")

    conn = django_rq.get_connection("default")
    for search in searches:
        run = newest_run(search)
        assert run.status == Status.FINISHED, (search.pk, run.error)
        # One run: the collection started once, and every task that started also succeeded, once.
        assert task_events(search, "start", "CollectPosts") == ["CollectPosts"]
        started = task_events(search, "start")
        assert sorted(started) == sorted(task_events(search, "success"))
        assert len(started) == len(set(started))
        assert {"CollectPosts", "SummarisePosts", "PackageOutputs"} <= set(started)
        assert not task_events(search, "failure")
        assert (run.folder_path / f"{run.folder}.zip").is_file()
        # One rq job per search, and it finished.
        assert Job.fetch(run.rq_job_id, connection=conn).get_status() == "finished"
    assert len({newest_run(s).rq_job_id for s in searches}) == 4
    assert django_rq.get_queue("default", connection=conn).count == 0


def test_killed_worker_search_is_queued_again_and_resumes_to_the_same_outputs(workers):
    archive = str(big_archive())
    workers.start(2)
    search = services.create_search(source="archive", archive_path=archive)

    # Mid-run: the posts are collected and the summary is being computed.
    workers.wait_for(lambda: task_events(search, "start", "SummarisePosts"), timeout=60, what="the summary step starts")
    first_folder, first_job = newest_run(search).folder, newest_run(search).rq_job_id
    running_on = Job.fetch(first_job, connection=django_rq.get_connection("default")).worker_name
    workers.by_name(running_on).kill_hard()
    killed_at = time.monotonic()

    def queued_again() -> bool:
        return newest_run(search).events.filter(task_family="Worker", event="note").exists()

    # The surviving worker's periodic sweep notices within seconds, not rq's minute-long cleanup.
    took = workers.wait_for(queued_again, timeout=45, what="the lost search is queued again")
    assert took < 45
    note = newest_run(search).events.get(task_family="Worker").message
    assert "worker running this search stopped" in note and "completed steps are kept" in note

    workers.wait_for(lambda: is_done(search.pk), timeout=90, what="the re-run finishes")
    run = newest_run(search)
    assert run.status == Status.FINISHED, run.error
    assert run.folder == first_folder and run.rq_job_id != first_job
    assert search.runs.count() == 1  # the same run resumed: not a new collection
    assert run.times_lost == 1
    # Resumed: the collection was not done again, the interrupted summary was.
    assert task_events(search, "start", "CollectPosts") == ["CollectPosts"]
    assert task_events(search, "start", "SummarisePosts") == ["SummarisePosts", "SummarisePosts"]
    print(f"recovered {time.monotonic() - killed_at:.1f} s after the kill")

    uninterrupted = services.create_search(source="archive", archive_path=archive)
    workers.wait_for(lambda: is_done(uninterrupted.pk), timeout=90, what="the uninterrupted run finishes")
    other = newest_run(uninterrupted)
    assert other.status == Status.FINISHED, other.error
    assert other.num_posts == run.num_posts == 50_000
    for name in COMPARED_OUTPUTS:
        resumed = (run.folder_path / name).read_bytes()
        assert resumed == (other.folder_path / name).read_bytes(), name
        assert resumed.count(b"\n") > 1, name


def test_job_timeout_ends_the_search_as_failed_with_the_reason(workers, settings):
    settings.DNFLOW_JOB_TIMEOUT = 2  # taken by the job when it is enqueued
    (worker,) = workers.start(1)
    # 150,000 posts: a run of several seconds even with the summarise pass on every core.
    search = services.create_search(source="archive", archive_path=str(big_archive(300)))

    workers.wait_for(lambda: is_done(search.pk), timeout=40, what="the timed-out search ends")
    run = newest_run(search)
    assert run.status == Status.FAILED
    assert "took longer than the job timeout (2 s, setting DNFLOW_JOB_TIMEOUT)" in run.error
    # Ended by the timeout itself, not by rq's last-resort kill a minute later.
    assert (run.finished - run.started).total_seconds() < 15
    assert not (run.folder_path / f"{run.folder}.zip").exists()
    # The reason is recorded first, then the work horse dies and rq fails its job.
    job = Job.fetch(run.rq_job_id, connection=django_rq.get_connection("default"))
    workers.wait_for(lambda: job.get_status() == "failed", timeout=10, what="rq fails the job")

    # The worker survives its work horse and takes the next search.
    settings.DNFLOW_JOB_TIMEOUT = 600
    quick = services.create_search(term="rain", source="sample")
    workers.wait_for(lambda: is_done(quick.pk), timeout=60, what="the next search finishes")
    assert newest_run(quick).status == Status.FINISHED, newest_run(quick).error
    assert worker.proc.poll() is None
