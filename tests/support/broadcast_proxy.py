"""A TCP proxy in front of Redis that a test can break: drop, refuse, stall and delay the app's traffic.

The app talks to Redis through it; a publisher that must go on while the app is cut off uses a
direct connection. ``sent`` counts the bytes the app sent to Redis: the engine work its commands ask for.
"""

from __future__ import annotations

import socket
import threading
import time


class Proxy:
    """Forwards 127.0.0.1:<port> to ``target``, while the test decides what gets through."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._up = True
        self._flowing = threading.Event()  # cleared: connections stay open, but no byte moves
        self._flowing.set()
        self.delay = 0.0  # seconds each chunk waits before it is forwarded, both ways
        self.sent = 0  # bytes forwarded from the app to Redis
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (Redis down, or the network gone)."""
        with self._lock:
            self._up = False
            conns, self._conns = self._conns, []
        for conn in conns:
            _close(conn)

    def stall(self) -> None:
        """Keep every connection open, accept new ones, forward nothing (a frozen Redis, a black-holed route)."""
        self._flowing.clear()

    def restore(self) -> None:
        with self._lock:
            self._up = True
        self._flowing.set()

    def close(self) -> None:
        self.cut()
        self._flowing.set()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
            if not up:
                _close(client)
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b, counted in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, counted), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                if self.delay:
                    time.sleep(self.delay)  # the fault itself: latency on the wire
                if counted:
                    with self._lock:
                        self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
