"""What rq says about a run's job and the worker running it: is it waiting, running, or gone?"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings

from .watchdog import alive_ttl

log = logging.getLogger("dnflow.rqstate")

# rq statuses of a job that will still run (a started one only while its worker lives).
WAITING_STATUSES = ("queued", "deferred", "scheduled")


def fetch_job(conn, job_id: str):
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not job_id:
        return None
    try:
        return Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None


def job_is_live(conn, job_id: str) -> bool:
    """True if the job waits on a queue, or runs on a worker that is still alive."""
    job = fetch_job(conn, job_id)
    if job is None:
        return False
    if job.get_status() in WAITING_STATUSES:
        return True
    return is_executing(conn, job) and worker_is_alive(conn, job.worker_name)


def is_executing(conn, job) -> bool:
    """rq's view: the job is started and in its queue's StartedJobRegistry (left when it ends or is abandoned)."""
    from rq.registry import StartedJobRegistry

    return job.get_status() == "started" and job.id in StartedJobRegistry(job.origin, connection=conn)


def worker_is_alive(conn, worker_name: str | None) -> bool:
    """An rq worker is alive while its key exists, its heartbeat is fresh and, on this host, its pid runs."""
    from rq.utils import now
    from rq.worker import Worker

    if not worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=conn)
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid and not pid_running(worker.pid):
        return False
    if worker.last_heartbeat is not None:
        last = worker.last_heartbeat
        if last.tzinfo is None:
            last = last.replace(tzinfo=now().tzinfo)
        # A DnflowWorker beats every DNFLOW_WORKER_HEARTBEAT seconds, busy or idle-but-waking.
        if now() - last > timedelta(seconds=alive_ttl() + max(settings.DNFLOW_RECONCILE_INTERVAL, 5) + 15):
            return False
    return True


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def what_rq_saw(job) -> str:
    """Why a job's run lost its process, in words for the run's timeline."""
    if job is None:
        return "its job is gone from Redis"
    if job.get_status() == "failed":
        try:
            result = job.latest_result()
            lines = [line for line in (result.exc_string or "").splitlines() if line.strip()] if result else []
            if lines:
                return f"rq: {lines[-1].strip().rstrip(';')}"
        except Exception:
            log.debug("could not read job %s's result", job.id, exc_info=True)
        return "its job failed without recording an outcome"
    return "its worker process is gone"
