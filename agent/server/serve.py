"""Running the app: the bind policy, the listening socket, uvicorn, Ctrl+C.

The server binds loopback unless told otherwise; any other address exposes the model
to the network, so it needs an API key. The socket is bound here, before uvicorn
starts, so that a port in use or an address that does not resolve is a one-line error.
Ctrl+C (or SIGTERM) cancels every generation at its next token, lets the responses end,
and returns; a second Ctrl+C forces the exit.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from agent.engines.base import ChatModel
from agent.errors import UserError
from agent.server.config import ServerConfig

API_KEY_ENV = "EDGE_AGENT_API_KEY"
SHUTDOWN_GRACE_S = 5


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UserError(f"cannot resolve --host {host}: {exc.strerror}") from None
    # An IP family's address is a string (the sockaddr type also covers other families).
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond this machine without an API key."""
    if api_key is None and not is_loopback(host):
        raise UserError(
            f"binding {host} exposes the model to the network: give --api-key KEY "
            f"(or set {API_KEY_ENV}), or bind 127.0.0.1"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
    except socket.gaierror as exc:
        raise UserError(f"cannot resolve --host {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"{host}:{port} is in use; pick another --port") from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def run(
    engine: ChatModel,
    sock: socket.socket,
    config: ServerConfig,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `engine` on `sock` until Ctrl+C or SIGTERM; returns after a clean stop."""
    import uvicorn

    from agent.server.app import create_app, server_state

    settle_here(engine)
    app = create_app(engine, config)
    scheduler = server_state(app).scheduler
    uvicorn_config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        lifespan="on",
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                on_ready(url_of(sock))

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Generations stop at their next token, so responses end and connections
            # close within the grace period. The signal is not raised again afterwards
            # (uvicorn's default): a stop asked for is a clean exit.
            scheduler.cancel_all()
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    Server(uvicorn_config).run(sockets=[sock])


@dataclass(frozen=True)
class BackgroundServer:
    """A server running on a thread of this process (see `serve_in_background`)."""

    url: str  # the API's base URL, http://127.0.0.1:PORT/v1
    app: Any  # the Starlette app (agent.server.app.server_state(app) for its state)


@contextmanager
def serve_in_background(
    engine: ChatModel | str,
    config: ServerConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[BackgroundServer]:
    """Serve `engine` (a ChatModel or a model spec) on a thread until the block ends.

    For scripts, notebooks and tests that want the HTTP API and its clients without a
    second process; generations still run on the one model thread. Port 0 picks a
    free port (see `url`). Leaving the block stops every generation at its next token
    and the server with it.
    """
    import time

    import uvicorn

    from agent.engines import as_chat_model
    from agent.server.app import create_app, server_state

    config = config or ServerConfig()
    check_exposure(host, config.api_key)
    chat_model = as_chat_model(engine)
    settle_here(chat_model)
    sock = bind(host, port)
    app = create_app(chat_model, config)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on",
                       timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    )  # fmt: skip
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="edge-agent-serve", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:  # the lifespan and the listening loop are up
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see the log above)")
            time.sleep(0.01)
        yield BackgroundServer(url_of(sock), app)
    finally:
        server_state(app).scheduler.cancel_all()
        server.should_exit = True
        thread.join(timeout=SHUTDOWN_GRACE_S + 10)
        sock.close()


def settle_here(engine: ChatModel) -> None:
    """Evaluate a local model's lazy arrays where they were made: on this thread (a
    model loaded by the caller), else on the model thread (`load_chat_model` loads
    there). MLX arrays belong to the thread that made them, and the server's event
    loop, which settles the model before each generation, may run on a third thread."""
    runtime = getattr(engine, "model", None)
    if not hasattr(runtime, "settle"):
        return
    try:
        runtime.settle()  # type: ignore[union-attr]
    except RuntimeError:  # "There is no Stream(cpu, 0) in current thread"
        from agent.model_thread import model_executor

        model_executor().submit(runtime.settle).result()  # type: ignore[union-attr]


def configure_logging(stream: Any = None) -> None:
    """Request lines ("#3 stop | queue 0 ms | prompt ... ") on stderr, whatever else
    `EDGE_AGENT_LOG` asks for (a lower level than info is kept)."""
    logger = logging.getLogger("agent.server")
    if any(getattr(h, "_edge_agent", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler._edge_agent = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.propagate = False
