"""The transfer service's disk thread: jobs run in the order given, posted or submitted, a
failing job neither stops the thread nor loses the jobs behind it, and a shut-down worker
runs what it holds and refuses more."""

from __future__ import annotations

import threading

import pytest
from twisted.logger import globalLogPublisher

from services.transfer.worker import SerialWorker, WorkerStoppedError

#: Seconds any test waits for the thread at most.
WAIT = 10.0


def test_posted_and_submitted_jobs_run_in_order_on_the_named_thread() -> None:
    """Posts (no future) and submits interleave in one first-in-first-out order, all on the
    worker's own thread; a submit's future holds the job's result."""
    worker = SerialWorker("test-serial")
    ran: list[tuple[int, str]] = []
    try:
        for i in range(200):
            if i % 3:
                worker.post(lambda i=i: ran.append((i, threading.current_thread().name)))
            else:
                worker.submit(ran.append, (i, threading.current_thread().name))
        last = worker.submit(len, ran)
        assert last.result(WAIT) == 200
    finally:
        worker.shutdown()
    assert [i for i, _ in ran] == list(range(200))
    assert {name for i, name in ran if i % 3} == {"test-serial"}


def test_a_failing_job_is_reported_and_the_next_ones_still_run() -> None:
    """A submitted job's exception lands in its future; a posted one's is logged; the jobs
    queued after either still run."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    worker = SerialWorker("test-serial")
    try:
        bad = worker.submit(int, "not a number")
        worker.post(lambda: 1 / 0)
        after = worker.submit(lambda: "still here")
        assert after.result(WAIT) == "still here"
        with pytest.raises(ValueError):
            bad.result(WAIT)
    finally:
        worker.shutdown()
        globalLogPublisher.removeObserver(events.append)
    failures = [e for e in events if e.get("log_failure") is not None]
    assert len(failures) == 1 and failures[0]["log_failure"].check(ZeroDivisionError)


def test_shutdown_runs_what_is_queued_then_refuses_more() -> None:
    """Jobs queued before `shutdown` run before it returns; later ones are refused with
    `WorkerStoppedError`, and a second shutdown is harmless."""
    worker = SerialWorker("test-serial")
    gate = threading.Event()
    done: list[int] = []
    worker.post(gate.wait, WAIT)
    for i in range(5):
        worker.post(done.append, i)
    gate.set()
    worker.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    with pytest.raises(WorkerStoppedError):
        worker.post(done.append, 5)
    with pytest.raises(WorkerStoppedError):
        worker.submit(done.append, 5)
    worker.shutdown()
    assert done == [0, 1, 2, 3, 4]
