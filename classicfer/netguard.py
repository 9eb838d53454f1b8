"""Prove that code opens no network connection: a guard that makes sockets raise.

classicfer runs offline: nothing is downloaded, nothing is sent. Tests wrap the
runtime in :func:`no_network` so that any attempt to create a socket, resolve a
host name or connect raises :class:`NetworkAccessError` instead of happening::

    from classicfer.netguard import no_network

    with no_network():
        classicfer.predict(image)        # raises if anything touches the network

How it works
------------
Two layers, both active only inside the ``with`` block:

1. A Python audit hook (:pep:`578`) that rejects the events ``socket.__new__``,
   ``socket.connect``, ``socket.bind``, ``socket.sendto``, ``socket.getaddrinfo``,
   ``socket.gethostbyname`` and friends. It sees every socket created through
   Python's ``_socket`` module, including references taken before the guard
   (``from socket import socket``). Audit hooks cannot be removed, so the hook is
   installed once and consults a counter; outside the guard it does nothing.
2. ``socket.socket`` is replaced by a subclass that cannot be instantiated, and
   ``socket.create_connection`` and ``socket.socketpair`` by functions that raise (for
   interpreters where audit hooks are unavailable). The originals are saved by the first
   ``with`` block to enter and restored by the last one to leave, so nested blocks and
   blocks of several threads, entered and left in any order, leave ``socket`` as it was.

Limits: native libraries that call the C ``socket()`` directly (not through
Python) are not seen; neither are child processes. classicfer's runtime uses
onnxruntime, OpenCV and dlib, none of which opens sockets for inference.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading

from .exceptions import ClassicferError


class NetworkAccessError(ClassicferError, RuntimeError):
    """Raised when code under :func:`no_network` tries to use the network."""


#: Audit events that mean "network".
BLOCKED_EVENTS = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.gethostbyname_ex", "socket.getnameinfo",
})

_PATCHED = ("socket", "create_connection", "socketpair")

_lock = threading.Lock()
#: number of active ``no_network`` blocks (all threads)
_depth = 0
#: the ``socket`` attributes saved by the first block to enter, restored by the last to leave
_saved: dict = {}
_hook_installed = False
#: Every blocked attempt, as (event, args repr), newest last (cleared on entry).
attempts: list[tuple[str, str]] = []


def _audit(event, args):
    if _depth and event in BLOCKED_EVENTS:
        attempts.append((event, repr(args)[:200]))
        raise NetworkAccessError(f"network access attempted ({event}) while the network guard "
                                 f"is active; classicfer must run offline")


def _blocked(name):
    def raiser(*args, **kwargs):
        attempts.append((name, repr(args)[:200]))
        raise NetworkAccessError(f"network access attempted ({name}) while the network guard "
                                 f"is active; classicfer must run offline")

    return raiser


class _GuardedSocket(socket.socket):
    """Stands in for ``socket.socket``: subclassable (ssl imports still work), never built."""

    def __new__(cls, *args, **kwargs):
        attempts.append(("socket.socket", repr(args)[:200]))
        raise NetworkAccessError("network access attempted (socket.socket) while the network "
                                 "guard is active; classicfer must run offline")


def _install_hook():
    global _hook_installed
    if not _hook_installed and hasattr(sys, "addaudithook"):
        sys.addaudithook(_audit)
        _hook_installed = True


@contextlib.contextmanager
def no_network():
    """Context manager: any socket creation, DNS lookup or connect raises.

    Yields the list of blocked attempts (also kept in :data:`attempts`), so a
    test can assert it stayed empty even if the code under test swallowed the
    exception. The guard is process-wide: while any thread is inside a block,
    every thread is blocked. Blocks may nest and may be entered and left by
    several threads in any order; the network comes back when the last one leaves.
    """
    with _lock:
        _enter()
    try:
        yield attempts
    finally:
        with _lock:
            _leave()


def _enter():
    global _depth
    _install_hook()
    if _depth == 0:
        attempts.clear()
        _saved.update({name: getattr(socket, name) for name in _PATCHED})
        socket.socket = _GuardedSocket
        socket.create_connection = _blocked("socket.create_connection")
        socket.socketpair = _blocked("socket.socketpair")
    _depth += 1


def _leave():
    global _depth
    _depth -= 1
    if _depth == 0:
        for name, value in _saved.items():
            setattr(socket, name, value)
        _saved.clear()


def network_blocked() -> bool:
    """True inside :func:`no_network`."""
    return _depth > 0


__all__ = ["BLOCKED_EVENTS", "NetworkAccessError", "attempts", "network_blocked", "no_network"]
