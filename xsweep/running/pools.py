"""Executors: which one a sweep runs on, and the process pools xsweep owns.

``workers=N`` makes a process pool that the sweep owns: it is stopped at once on Ctrl-C and
its workers exit on their own when the driver dies (a SIGKILL runs no cleanup). Executors
the user passes (threads, processes, loky, dask, MPI) are used as they are.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from ..errors import SweepError


def resolve_executor(executor: Any, workers: int | None) -> tuple[Executor | None, bool]:
    """The executor to use and whether the sweep owns it (and must shut it down)."""
    if workers is not None:
        if executor is not None:
            raise SweepError("Pass either executor= or workers=, not both.")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise SweepError(f"workers must be a whole number >= 1, not {workers!r}.")
        return new_pool(workers), True
    if executor is None:
        return None, False
    if hasattr(executor, "get_executor") and hasattr(executor, "scheduler_info"):
        return executor.get_executor(), False  # a distributed.Client
    if isinstance(executor, Executor) or callable(getattr(executor, "submit", None)):
        return executor, False
    raise SweepError(
        f"executor must be a concurrent.futures.Executor (ThreadPoolExecutor, "
        f"ProcessPoolExecutor, loky, mpi4py.futures.MPIPoolExecutor) or a distributed.Client; "
        f"got {type(executor).__name__}."
    )


#: Seconds between two checks, in a worker of a pool xsweep owns, that its driver still lives.
WATCH_INTERVAL = 0.5
#: Exit status of a worker that quits because its driver died.
ORPHAN_EXIT_STATUS = 70


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool for ``workers=``, whose workers exit on their own if the driver dies.

    A SIGKILLed driver runs no cleanup, and its workers would wait on their task queue forever
    (every worker holds the queue's write end too, so it never reaches EOF). Each worker's
    initializer starts :func:`_watch_driver`'s thread. The pool is the one
    ``ProcessPoolExecutor(max_workers=workers)`` makes, on the default start method.
    """
    context = multiprocessing.get_context()
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_watch_driver,
        initargs=(os.getpid(), context.get_start_method()),
    )


def _watch_driver(driver_pid: int, start_method: str) -> None:
    """Pool worker initializer: a daemon thread ends this worker soon after its driver dies.

    Why the parent pid (and not a pipe that reaches EOF when the driver dies): under the
    default start method on Linux, fork, every worker inherits every descriptor the driver
    holds when it forks, including the pipe ends of the workers forked before it (and so
    would anything the driver or a worker forks later), so such a pipe would reach EOF only
    once all of those exit, or never. Reparenting does not depend on who holds what: with
    fork and spawn the driver is the worker's parent, and when it dies the kernel hands the
    worker to init (or a subreaper), so ``os.getppid()`` changes: one cheap system call per
    check, no descriptor, no pid-reuse race (the new parent is a live process, never the
    dead driver's pid).

    With forkserver the parent is the fork server, which does not die with the driver (its
    workers hold its "alive" pipe open), so the worker watches the driver's pid itself: a
    pidfd (Linux >= 5.3; it becomes readable when the driver exits, even while it awaits its
    reaper as a zombie, and never refers to a reused pid), else ``os.kill(pid, 0)``.

    The worker ends with ``os._exit``: raising in a thread would not stop it, and exit
    handlers (multiprocessing's finalizers join queue threads) could block on the dead
    driver. The check runs in its own thread every ``WATCH_INTERVAL`` seconds, off the path
    of the cells; it cannot run while a cell holds the GIL inside a long C call, so such a
    worker exits when that call returns. Any failure to set the watch leaves the worker
    as it was: the pool must not break over it.
    """
    try:
        parent = os.getppid()
        if start_method in ("fork", "spawn"):
            if parent != driver_pid:  # the driver died before this worker started
                os._exit(ORPHAN_EXIT_STATUS)

            def alive() -> bool:
                return os.getppid() == parent

        else:
            alive = _pid_watch(driver_pid)
        threading.Thread(
            target=_watchdog, args=(alive,), name="xsweep-driver-watch", daemon=True
        ).start()
    except Exception:
        pass


def _pid_watch(pid: int) -> Callable[[], bool]:
    """A check that process ``pid`` (not a child of ours) has not exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return lambda: False
    except (AttributeError, OSError):  # no pidfds here: signal 0 (a zombie counts as alive)

        def alive() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except OSError:
                pass
            return True

        return alive
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return lambda: not poller.poll(0)


def _watchdog(alive: Callable[[], bool]) -> None:
    while True:
        try:
            if not alive():
                break
        except Exception:
            pass
        time.sleep(WATCH_INTERVAL)
    os._exit(ORPHAN_EXIT_STATUS)


def stop_pool(pool: Executor) -> None:
    """Stop a pool we own at once: queued tasks are cancelled, running workers terminated."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def executor_workers(executor: Executor) -> int:
    """How many cells the executor can run at once (a best guess for unknown executors)."""
    for attr in ("_max_workers", "max_workers", "_n_workers"):
        n = getattr(executor, attr, None)
        if isinstance(n, int) and n > 0:
            return n
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:
            pass
    return os.cpu_count() or 1
