"""The bot's own processes kept closed: not dumpable, and no secret left in their environment."""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Iterable

from kevolve.bot.settings import SECRET_VARIABLES, BotSettings
from kevolve.bot.vault import exposure_warning, require_private

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True)


def make_undumpable() -> None:
    """Make this process non-dumpable: no process without CAP_SYS_PTRACE, even of the same
    user, may ptrace it or read its /proc/<pid>/environ, mem or fds (and no core dump)."""
    # prctl is variadic and PR_SET_DUMPABLE reads its second argument alone.
    if _LIBC.prctl(PR_SET_DUMPABLE, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(error)}")


def wipe_environment(names: Iterable[str]) -> None:
    """Remove the variables `names` from this process's environment, so no child inherits them,
    first zeroing their values in place: /proc/<pid>/environ shows the environment block the
    process started with, which unsetting alone leaves as it was."""
    wanted = {name.encode() for name in names}
    entries = ctypes.POINTER(ctypes.c_void_p).in_dll(_LIBC, "environ")
    index = 0
    while entries[index]:
        address = entries[index]
        assert address is not None  # the loop stops at the list's terminating NULL
        name, sep, value = ctypes.string_at(address).partition(b"=")
        if sep and name in wanted:
            ctypes.memset(address + len(name) + 1, 0, len(value))
        index += 1
    for name in wanted:
        os.environ.pop(name.decode(), None)


def seal(settings: BotSettings) -> None:
    """Refuse an App key file open to others; warn of each secret given in the environment,
    then wipe them all from it. ValueError to refuse, naming the file and the fix."""
    if settings.github_private_key_path is not None:
        require_private(settings.github_private_key_path, "KEVOLVE_GITHUB_PRIVATE_KEY_PATH")
    for name in settings.exposed:
        log.warning(exposure_warning(name))
    wipe_environment(SECRET_VARIABLES)
