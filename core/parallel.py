"""Map a function over items in worker processes: results in input order, a bounded number in flight.

Detection (decode, HOG, landmark fits) is CPU-bound Python-with-C code holding the GIL, so it scales
with processes, not threads. :func:`ordered_map` keeps at most ``window`` items submitted and not yet
consumed, so memory does not grow with the number of items, and yields results in input order, so
the output is the same as ``map(fn, items)`` whatever the scheduling. Workers are forked (from a
forkserver once this process runs threads, ``spawn`` where neither exists) and run one thread each.

``IDBENCH_WORKERS`` overrides the default worker count (the CPUs this process may use, at most 8);
``IDBENCH_WORKERS=1`` runs everything in the calling process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Deque, Iterable, Iterator, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 8
THREADED_RUNTIMES = ("torch", "onnxruntime", "mediapipe", "tensorflow", "jax")  # loaded: workers are spawned
MIN_ITEMS_FOR_POOL = 8  # below this, starting workers costs more than it saves
FORKSERVER_PRELOAD = ("idbench.worker_preload",)  # what the forkserver imports before forking workers


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """``IDBENCH_WORKERS`` when set, else the usable CPUs (at most 8)."""
    env = os.environ.get("IDBENCH_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"IDBENCH_WORKERS must be an integer, got {env!r}") from None
    return min(available_cpus(), MAX_DEFAULT_WORKERS)


def _context() -> multiprocessing.context.BaseContext:
    # fork: no re-import of the caller's __main__ (scripts without a main guard work) and no start-up
    # imports. But forking a process whose torch (OpenMP) or other thread pools are running can leave a
    # child blocked on a lock held by a thread that was not copied (seen with `bench run`, which builds
    # its torch encoders before detecting): then the workers are forked from a forkserver, a clean
    # process started once that never runs threads. It imports the detection code and loads dlib's
    # models once (:mod:`idbench.worker_preload`), so a pool costs two forks, not two interpreters that
    # each import numpy/OpenCV/dlib and read 100 MB of landmark models (~1 CPU-s per worker, per pool).
    # The same holds for every runtime that keeps native worker threads once used: a `make results` process
    # that had run the estimators (mediapipe's graph threads) forked workers that hung at once.
    methods = multiprocessing.get_all_start_methods()
    safe_to_fork = "fork" in methods and not any(m in sys.modules for m in THREADED_RUNTIMES) and _one_thread()
    if safe_to_fork:
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:  # not a POSIX system
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))  # read when the server starts (first pool)
    _fresh_forkserver()
    _start_forkserver_in_empty_dir()
    return ctx


_EMPTY_DIR: list = []


def _start_forkserver_in_empty_dir() -> None:
    """Start the server from an empty folder. It is a ``python -c`` process, so its ``sys.path`` starts with
    the current folder, searched before the editable install's finder: a folder holding ``idbench/`` (an
    IDBENCH_HOME under the working folder) would become the ``idbench`` its workers import. The workers
    still run in the caller's folder (multiprocessing sends it with each worker's preparation data)."""
    import tempfile
    from multiprocessing import forkserver

    if not _EMPTY_DIR:
        _EMPTY_DIR.append(tempfile.mkdtemp(prefix="idbench-forkserver-"))
    here = os.getcwd()
    os.chdir(_EMPTY_DIR[0])
    try:
        forkserver.ensure_running()
    finally:
        os.chdir(here)


_SERVER_STATE: list = []  # the environment and sys.path the running forkserver was started with


def _server_state() -> tuple:
    """What the server's preload depends on: idbench's variables (IDBENCH_HOME: where dlib's models are read)
    and sys.path. Variables that imports set as a side effect (OpenCV's QT_*/LD_LIBRARY_PATH, torch's
    TORCHINDUCTOR_CACHE_DIR) are not part of it: the workers get the caller's whole environment anyway."""
    return sorted((k, v) for k, v in os.environ.items() if k.startswith("IDBENCH_")), list(sys.path)


def _fresh_forkserver() -> None:
    """Workers forked from the server inherit *its* environment (a spawned worker got the caller's at each
    pool): when what its preload depends on changed since (e.g. IDBENCH_HOME, a weights folder, sys.path),
    the server is stopped, so the next pool starts one with the current state and models found there; every
    other variable is set in each worker from the caller's environment at the pool (:func:`_init_worker`)."""
    from multiprocessing import forkserver

    state = _server_state()
    server = forkserver._forkserver
    if _SERVER_STATE and _SERVER_STATE[0] != state and getattr(server, "_forkserver_pid", None):
        server._stop()
    _SERVER_STATE[:] = [state]


def _one_thread() -> bool:
    """True unless this process runs other native threads now (Linux: /proc/self/task), whatever started them:
    a test process that had decoded videos and run estimators hung in a forked worker with 4 threads alive."""
    try:
        return len(os.listdir("/proc/self/task")) <= 1
    except OSError:
        return True


def _init_worker(environ: Optional[dict] = None) -> None:
    """The caller's environment at the pool (a forkserver's child starts with the server's), and one thread
    per worker process: the processes are the parallelism."""
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    os.environ["OMP_NUM_THREADS"] = "1"
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: Optional[int] = None,
                window: Optional[int] = None, min_items: int = MIN_ITEMS_FOR_POOL,
                preload: Optional[Callable[[], object]] = None) -> Iterator[R]:
    """``map(fn, items)`` computed by ``workers`` processes; lazily yields results in input order.

    ``fn`` and the items must be picklable (a module-level function or a ``functools.partial`` of
    one). At most ``window`` (default 128 x workers: results should be small; a wide window keeps the
    workers busy while the caller stops to load a model) items are in flight.
    ``preload`` runs in this process before the workers are forked, so models it loads are loaded
    once and shared copy-on-write. With one worker, or fewer than ``min_items`` items, everything
    runs in the calling process. An exception raised by ``fn`` propagates when its item's turn comes.
    """
    items = items if isinstance(items, Sequence) else list(items)
    n = default_workers() if workers is None else max(1, workers)
    n = min(n, len(items))
    if n <= 1 or len(items) < min_items:
        yield from map(fn, items)
        return
    window = max(n, window or 128 * n)
    if preload is not None and _context().get_start_method() == "fork":
        preload()
    todo = iter(items)
    pool = ProcessPoolExecutor(n, mp_context=_context(), initializer=_init_worker, initargs=(dict(os.environ),))
    share = _CpuShare(n)
    try:
        pending: Deque = deque(pool.submit(fn, x) for _, x in zip(range(window), todo))
        while pending:
            result = pending.popleft().result()
            for x in todo:  # refill one slot before handing the result out
                pending.append(pool.submit(fn, x))
                break
            share.apply()  # the caller may have imported torch since (e.g. its first embedding batch)
            yield result
    finally:  # also when the consumer stops early: drop what is queued, do not wait for it
        pool.shutdown(wait=True, cancel_futures=True)
        share.restore()


class _CpuShare:
    """While ``n_workers`` workers run, this process's torch gets the CPUs they leave (at least 1 thread).

    The caller keeps working meanwhile (``bench run`` embeds each batch while the workers detect the
    next images); with torch's default of one thread per CPU on top of the workers, its OpenMP threads
    spin-wait on CPUs the workers need: measured on 2 cores, the parent's CPU time per face halved with
    1 thread, at the same embeddings. ``apply`` is called per result, so a torch first imported while the
    pool runs (``bench embed`` loads it with its first full batch) is limited too; ``restore`` puts back
    the setting found."""

    def __init__(self, n_workers: int):
        self.n_workers = n_workers
        self.before: Optional[int] = None
        self.apply()

    def apply(self) -> None:
        torch = sys.modules.get("torch")
        if self.before is not None or torch is None or not hasattr(torch, "set_num_threads"):
            return  # done already, or no torch (yet; a half-imported torch has no set_num_threads)
        self.before = torch.get_num_threads()
        torch.set_num_threads(max(1, min(self.before, available_cpus() - self.n_workers)))

    def restore(self) -> None:
        if self.before is not None:
            sys.modules["torch"].set_num_threads(self.before)
