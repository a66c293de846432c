"""HTTP/1.1 on a bare socket: for tests where the exact bytes or a stalled reader matter."""

from __future__ import annotations

import socket


def raw_request(url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> socket.socket:
    """A socket that has sent one HTTP/1.1 request: for tests where the exact bytes or a stalled reader matter."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Bytes from ``sock`` up to and including ``marker``."""
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {data[-300:]!r}")
        data += chunk
        assert len(data) < limit, "marker not found"
    return data
