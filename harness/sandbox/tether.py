"""Run a launcher (bubblewrap, sudo, ncu) bound to the process that starts us, and take what it
started along when that process dies:
`python -I -m kevolve.harness.sandbox.tether PARENT -- CMD...`.

bubblewrap's --die-with-parent leaves a window at its start: the namespace child it clones waits
for bubblewrap before it asks to die with it, and a bubblewrap killed then leaves that child
waiting for good. So the tether stays, in the launcher's process group: it asks to be told
(SIGTERM) when PARENT dies, checks that PARENT is still its parent after asking, and when told,
kills its whole group, the launcher and such a child with it. Otherwise it ends as the launcher
did. Standard library only.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from types import FrameType

from kevolve.harness.sandbox.jail import die_with_parent

_TOLD = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def command(parent: int) -> list[str]:
    """What goes before a launcher to tether it to `parent`: this interpreter, isolated from the
    caller's environment and working directory, running this module."""
    return [sys.executable, "-I", "-m", "kevolve.harness.sandbox.tether", str(parent), "--"]


def main() -> None:
    """Tie argv[3:] (argv[2] is '--') to the process argv[1], then end as it ends."""
    parent, command = int(sys.argv[1]), sys.argv[3:]
    for signum in _TOLD:  # before asking: a parent that dies at once finds the group's end set
        signal.signal(signum, _kill_group)
    die_with_parent(parent, signal.SIGTERM)
    launcher = os.fork()
    if launcher == 0:
        try:
            os.execvp(command[0], command)  # the handlers above go back to the default here
        except OSError as exc:
            print(f"kevolve tether: cannot start {command[0]}: {exc}", file=sys.stderr)
            os._exit(127)
    _let_go_of_descriptors()
    _, status = os.waitpid(launcher, 0)
    _end_as(status)


def _kill_group(signum: int, frame: FrameType | None) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _let_go_of_descriptors() -> None:
    """Keep no end of the launcher's pipes open (its reader waits for their end) and read no
    input; stdout and stderr stay for messages."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    os.closerange(3, 2**20 if soft == resource.RLIM_INFINITY else soft)


def _end_as(status: int) -> None:
    """Exit with the launcher's status, or die of the signal that killed it (no core dump)."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # a signal whose default is not to end a process
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
