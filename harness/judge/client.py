"""The judge's handle on one evaluation worker: requests with deadlines, deaths as verdicts.

A wait for a reply can also yield: given a test that says a timer has waited long enough for the
GPU this wait holds, it kills the worker and raises `Preempted` (see `preemption`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kevolve.harness.evaluation import Verdict
from kevolve.harness.judge.subject import Failure
from kevolve.harness.sandbox import channel
from kevolve.harness.sandbox.spawn import Child, Limits, spawn

Reply = tuple[dict[str, Any], list[bytearray]]
# The only verdicts a worker gives; any other verdict in a reply is forged or garbage.
WORKER_VERDICTS = {
    v.value: v for v in (Verdict.COMPILE_ERROR, Verdict.RUNTIME_ERROR, Verdict.CRASHED)
}
POLL_S = 0.05  # how often a wait that may yield asks whether it should


class Preempted(Exception):
    """A wait gave the GPU up to a waiting timer; the worker was killed, its call unfinished."""

    def __init__(self, what: str, ran_s: float) -> None:
        super().__init__(f"{what} was stopped after {ran_s:.1f} s so that a timer could go")
        self.ran_s = ran_s


class WorkerClient:
    """Starts a confined worker and talks to it; any hang or death becomes a `Failure`."""

    def __init__(self, env: Mapping[str, str], cwd: Path, limits: Limits) -> None:
        read_fd, write_fd = os.pipe()
        channel.widen(read_fd)  # replies carry whole outputs: GiBs at KernelBench's sizes
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
        self.sent_at = time.monotonic()

    def send(self, request: dict[str, Any]) -> None:
        """Send a request without waiting for its reply (its deadline counts from now)."""
        self.sent_at = time.monotonic()
        # A dead worker shows up when the reply is awaited.
        with contextlib.suppress(OSError):
            channel.send(self.child.stdin, request)

    def receive(
        self,
        what: str,
        timeout: float,
        why: str = "",
        yield_to: Callable[[], bool] | None = None,
    ) -> Reply:
        """The reply to the last request, due `timeout` s after it was sent (`why`: how that
        budget was reached); `Failure` on refusal, death or deadline; `Preempted` once
        `yield_to` says a timer has waited long enough."""
        item = self._wait(what, timeout, why, yield_to)
        if isinstance(item, BaseException):
            raise self._death(what, item)
        header, blobs = item
        if not header.get("ok"):
            raise self._refusal(what, header)
        return header, blobs

    def _wait(
        self, what: str, timeout: float, why: str, yield_to: Callable[[], bool] | None
    ) -> Reply | BaseException:
        """The next item from the reader, asking `yield_to` every `POLL_S` while there is none."""
        deadline = self.sent_at + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.child.kill()
                budget = f", its budget ({why})" if why else ""
                raise Failure(
                    Verdict.TIMEOUT,
                    f"{what} did not finish within {timeout:g} s{budget}; "
                    f"the candidate was killed (look for an endless loop or a hang)",
                )
            try:
                return self._replies.get(timeout=left if yield_to is None else min(left, POLL_S))
            except queue.Empty:
                if yield_to is not None and yield_to():
                    self.child.kill()
                    raise Preempted(what, time.monotonic() - self.sent_at) from None

    def request(self, request: dict[str, Any], what: str, timeout: float, why: str = "") -> Reply:
        """Send a request and wait for its reply."""
        self.send(request)
        return self.receive(what, timeout, why)

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
