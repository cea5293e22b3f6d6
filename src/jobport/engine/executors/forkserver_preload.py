"""Imported by the local executor's fork server, and by nothing else: ties its life to the
server's.

The fork server is a process multiprocessing starts once; worker processes are forked from
it. Each worker dies with its parent (PR_SET_PDEATHSIG), and that parent is the fork server,
so the fork server must die with the server: the kernel kills it when the server dies, even
by SIGKILL, and the workers follow it. (multiprocessing's own rule, that the fork server
ends once every process holding its "alive" pipe has, never fires here: the workers hold
that pipe themselves.)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1

with contextlib.suppress(OSError, AttributeError):
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
if os.getppid() == 1:  # the server died before the line above: nobody would kill us
    os._exit(0)
