"""Starting the servers: the binding rules (loopback unless a token is set) and the imports
of the optional ``serve`` extra, which happen here and only when a server starts."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import sys
from typing import Any

from ..errors import MissingDependencyError, UsageError

log = logging.getLogger("semsearch.serve")

#: Connections with a request being answered, beyond those waiting to send one.
ACTIVE_CONNECTIONS = 256


def normalise_host(host: str) -> str:
    """One spelling per address: ``LOCALHOST`` → ``localhost``, ``127.1`` → ``127.0.0.1``,
    ``[::1]`` → ``::1``; names other than IP literals are only lower-cased."""
    name = host.strip().strip("[]").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if name and all(part.isdigit() for part in name.split(".")):
        try:  # the shorthands inet_aton accepts (127.1, 2130706433)
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            pass
    return name


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback one (127.0.0.0/8, ::1)."""
    name = normalise_host(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        raise UsageError(f"cannot resolve host {host!r}") from None
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise UsageError(
            f"binding to {host} makes the index reachable from other machines: set a token"
            " with --token or SEMSEARCH_TOKEN (every request must then carry it)"
        )


def loopback_host_names(host: str) -> tuple[str, ...]:
    """The Host header names a loopback server answers without a token: the usual loopback
    spellings and the address it was started on, as typed and normalised. A web page on
    another site can make a browser send none of them (DNS rebinding needs a domain name)."""
    names = ["localhost", "*.localhost", "127.0.0.1", "[::1]"]
    for name in (host.strip().lower(), normalise_host(host)):
        shown = f"[{name.strip('[]')}]" if ":" in name else name
        if shown and shown not in names:
            names.append(shown)
    return tuple(names)


def require(module: str, what: str) -> Any:
    """Import a module of the ``serve`` extra, or say which pip command installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(what, "serve") from None


def one_thread_per_search() -> None:
    """A server gets its parallelism from worker threads, one request each; OpenMP inside a
    one-query faiss search only adds threads that spin and wait for each other. Measured on
    this (busy) 2-core machine, 10k chunks: dense p50 108 ms with faiss's default 2 OpenMP
    threads, 6.7 ms with 1 (hybrid 137 vs 10 ms)."""
    # omp_set_num_threads changes only the calling thread's setting, and searches run on
    # worker threads: the environment variable, read when OpenMP loads (with faiss, lazily),
    # is what every thread starts from. A value the user set is kept.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    faiss = sys.modules.get("faiss")
    if faiss is not None:  # already loaded: at least this thread
        faiss.omp_set_num_threads(1)


def serve_http(
    index: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    allow_writes: bool = False,
    workers: int | None = None,
    engine: str = "local",
    shards: int = 2,
    replicas: int = 1,
    ray_address: str | None = None,
    verbose: bool = False,
    processes: int = 1,
) -> None:
    """Load the index once and serve it until interrupted. ``engine="ray"`` spreads its
    segments over ``shards`` groups of ``replicas`` Ray actors (docs/ray-serving.md); with
    ``processes`` > 1, that many local processes accept on one listening socket (see
    :func:`serve_processes`)."""
    check_binding(host, token)
    if not 0 <= port <= 65535:
        raise UsageError(f"port must be between 0 and 65535, got {port}")
    if processes < 1:
        raise UsageError(f"processes must be at least 1, got {processes}")
    require("uvicorn", "the HTTP server (uvicorn)")
    require("starlette", "the HTTP server (starlette)")
    from .service import SearchService

    if processes > 1 and engine != "local":
        raise UsageError("several server processes work with the local engine only")

    def run(sock: socket.socket | None, first: bool) -> None:
        one_thread_per_search()
        backend = make_engine(index, engine, shards, replicas, ray_address, verbose)
        try:
            service = SearchService(
                index, workers=workers or default_workers(), allow_writes=allow_writes,
                engine=backend,
            )  # fmt: skip
            server = make_server(service, host=host, port=port, token=token)
            if first:
                shown = f"[{host}]" if ":" in host else host
                many = f" by {processes} processes" if processes > 1 else ""
                log.info("serving %s on http://%s:%d/%s (Ctrl-C stops)", service.path, shown,
                         port, many)  # fmt: skip
            server.run(sockets=[sock] if sock is not None else None)
        finally:
            if backend is not None:
                backend.close()

    if processes == 1 or not hasattr(os, "fork"):
        run(None, True)
    else:
        serve_processes(run, processes, host, port)


def make_engine(
    index: str | os.PathLike[str],
    engine: str,
    shards: int = 2,
    replicas: int = 1,
    ray_address: str | None = None,
    verbose: bool = False,
) -> Any:
    """None for the local engine (the service's default), else the Ray one, started."""
    if engine not in ("local", "ray"):
        raise UsageError(f"engine must be local or ray, got {engine!r}")
    if engine == "local":
        return None
    from ..shard.serving import RayServing

    return RayServing(index, shards=shards, replicas=replicas, address=ray_address, verbose=verbose)


def serve_processes(run: Any, processes: int, host: str, port: int) -> None:
    """Serve from ``processes`` processes sharing one listening socket, each with its own
    reader pool and model, forked before either is loaded. Python runs one thread at a time
    per process, so the parts of a search that hold the interpreter (BM25 over postings,
    fusion, shaping the JSON) run side by side only in separate processes; the vectors are
    memory-mapped, so the page cache holds one copy for all. The first process supervises:
    when it stops, the others are stopped."""
    import signal

    name = normalise_host(host)
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it small responses wait ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((name, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    children: list[int] = []
    try:
        for _ in range(processes - 1):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    _die_with_parent(signal.SIGTERM)
                    run(sock, False)
                except KeyboardInterrupt:
                    pass
                except BaseException as exc:
                    log.error("server process %d stopped: %s", os.getpid(), exc)
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)
        run(sock, True)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        sock.close()


def _die_with_parent(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when its parent dies (best effort)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG


def make_server(
    service: Any,
    *,
    host: str,
    port: int,
    token: str | None,
    header_timeout: float | None = None,
    max_waiting: int | None = None,
    deadline: float | None = None,
) -> Any:
    """A uvicorn server for ``service`` (``.run()`` it, or ``.run(sockets=[...])``). The
    optional limits default to those of :mod:`.connections` and :mod:`.http`."""
    check_binding(host, token)
    uvicorn = require("uvicorn", "the HTTP server (uvicorn)")
    from . import connections
    from .http import REQUEST_DEADLINE, create_app

    waiting = max_waiting or connections.MAX_WAITING
    protocol = type(
        "Guarded",
        (connections.GuardedH11,),
        {"header_timeout": header_timeout or connections.HEADER_TIMEOUT, "max_waiting": waiting},
    )
    hosts = loopback_host_names(host) if is_loopback(host) and not token else None
    app = create_app(
        service, token=token, allowed_hosts=hosts, deadline=deadline or REQUEST_DEADLINE
    )
    config = uvicorn.Config(
        app,
        host=normalise_host(host),
        port=port,
        http=protocol,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,
        # Connections waiting for a request head are capped at max_waiting by the protocol;
        # this many more are left for requests being answered.
        limit_concurrency=waiting + ACTIVE_CONNECTIONS,
        server_header=False,
    )
    return uvicorn.Server(config)


def default_workers() -> int:
    """Readers (and worker threads): one per core, at least two so a slow query never holds
    up a health check."""
    return max(2, os.cpu_count() or 1)
