"""The bot's app on loopback: served by a real uvicorn on a free port, and the app's own GitHub
client per installation of the stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from kevolve.bot.github import AppClient, GitHub

from tests.ports import free_port
from tests.standin.fixtures import World


@contextmanager
def serving(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 while the block runs; its base URL."""
    port = free_port() if port is None else port
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def client_for(world: World) -> Callable[[int | None], GitHub]:
    """The app's client for a delivery's installation (always the world's one)."""

    def make(installation_id: int | None) -> GitHub:
        assert installation_id == world.installation.id  # the delivery's own installation
        api = world.standin.urls.api
        return AppClient(
            world.app.app_id, world.app.private_key, installation_id, api, throttle=False
        )

    return make
