"""The judge's handle on one evaluation worker: requests with deadlines, deaths as verdicts."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kevolve.harness.evaluation import Verdict
from kevolve.harness.judge.subject import Failure
from kevolve.harness.sandbox import channel
from kevolve.harness.sandbox.spawn import Child, Limits, spawn

Reply = tuple[dict[str, Any], list[bytes]]
# The only verdicts a worker gives; any other verdict in a reply is forged or garbage.
WORKER_VERDICTS = {
    v.value: v for v in (Verdict.COMPILE_ERROR, Verdict.RUNTIME_ERROR, Verdict.CRASHED)
}


class WorkerClient:
    """Starts a confined worker and talks to it; any hang or death becomes a `Failure`."""

    def __init__(self, env: Mapping[str, str], cwd: Path, limits: Limits) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self.child: Child = spawn(
                "kevolve.harness.judge.worker",
                [str(write_fd)],
                env=env,
                cwd=cwd,
                limits=limits,
                pass_fds=[write_fd],
            )
        finally:
            os.close(write_fd)
        self._replies: queue.Queue[Reply | BaseException] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read, args=(os.fdopen(read_fd, "rb"),), daemon=True
        )
        self._reader.start()

    def send(self, request: dict[str, Any]) -> None:
        """Send a request without waiting for its reply."""
        # A dead worker shows up when the reply is awaited.
        with contextlib.suppress(OSError):
            channel.send(self.child.stdin, request)

    def receive(self, what: str, timeout: float) -> Reply:
        """The reply to the last request; `Failure` on refusal, death or deadline."""
        try:
            item = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.child.kill()
            raise Failure(
                Verdict.TIMEOUT,
                f"{what} did not finish within {timeout:g} s; "
                f"the candidate was killed (look for an endless loop or a hang)",
            ) from None
        if isinstance(item, BaseException):
            raise self._death(what, item)
        header, blobs = item
        if not header.get("ok"):
            raise self._refusal(what, header)
        return header, blobs

    def request(self, request: dict[str, Any], what: str, timeout: float) -> Reply:
        """Send a request and wait for its reply."""
        self.send(request)
        return self.receive(what, timeout)

    def close(self) -> None:
        """Stop the worker (and everything it started)."""
        with contextlib.suppress(OSError):
            self.child.stdin.close()
        self.child.kill()

    def _refusal(self, what: str, header: dict[str, Any]) -> Failure:
        """The worker's reported `Failure`, or a crash if it claims a verdict it cannot give."""
        verdict = WORKER_VERDICTS.get(str(header.get("verdict")))
        if verdict is None:
            self.child.kill()
            claimed = str(header.get("verdict"))[:40]
            return Failure(
                Verdict.CRASHED, f"the worker sent an invalid verdict during {what} ({claimed!r})"
            )
        line = header.get("line")
        return Failure(
            verdict, str(header.get("message", "")), line if isinstance(line, int) else None
        )

    def _death(self, what: str, cause: BaseException) -> Failure:
        """A `Failure` describing how the worker died during `what`."""
        if isinstance(cause, channel.ChannelCorrupt):
            self.child.kill()  # the channel is unusable; waiting for an exit only wastes time
        try:
            self.child.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a wedged process is killed below either way
            self.child.kill()
        tail = self.child.log_tail().strip()
        detail = f"; its last output:\n{tail}" if tail else ""
        if isinstance(cause, channel.ChannelCorrupt):
            return Failure(
                Verdict.CRASHED, f"the worker sent garbage during {what} ({cause}){detail}"
            )
        return Failure(
            Verdict.CRASHED,
            f"the candidate's process died during {what} ({self.child.exit_description()}){detail}",
        )

    def _read(self, stream: Any) -> None:
        """Reader thread: move every reply frame into the queue, then the reason it stopped."""
        try:
            while True:
                self._replies.put(channel.recv(stream))
        except BaseException as exc:  # noqa: BLE001 - delivered to the waiting judge
            self._replies.put(exc)
        finally:
            stream.close()
