"""Raw clients for the server tests: HTTP/1.1 (a socket per stream) and HTTP/2 (every stream on one connection).

Both record, per stream, the bytes and when each piece arrived, and whether the response ended
cleanly (the chunked terminator; END_STREAM), so that a test sees exactly what a server sent.

httpx (through the ``h2`` package) cannot serve here: ``h2``'s connection state machine closes on
a GOAWAY and rejects every later frame, so the streams a server lets finish after its GOAWAY
(RFC 9113, section 6.8: the graceful shutdown every server here does) read as failures, where
browsers and curl receive them. This client hands ``h2`` every frame but GOAWAY, which it notes.
It can also reset a stream (RST_STREAM), which httpx does not do when a response is closed.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events

GOAWAY = 0x7  # the frame type


@dataclass
class Stream:
    """What one request received."""

    status: int | None = None
    body: bytes = b""  # HTTP/1.1: the raw response, chunk framing included; HTTP/2: the DATA
    ended: bool = False  # the response is complete: the chunked terminator, or END_STREAM
    reset: bool = False  # the server reset it (RST_STREAM) or closed its connection unfinished
    arrivals: list[float] = field(default_factory=list)  # when each piece came (time.monotonic())


def read_until(clients: Sequence[H1Client | H2Client], condition: Callable[[], bool], timeout: float) -> bool:
    """Read every client's sockets until ``condition()`` holds (True), or ``timeout`` passes or all close (False).

    One selector for the whole call: a thousand streams are not registered again for each read.
    """
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        tls: list[tuple[ssl.SSLSocket, H1Client | H2Client]] = []
        for client in clients:
            for sock in client.sockets():
                selector.register(sock, selectors.EVENT_READ, client)
                if isinstance(sock, ssl.SSLSocket):
                    tls.append((sock, client))
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or not selector.get_map():
                return False
            # TLS: bytes already decrypted are not the selector's to see.
            ready = [(sock, client) for sock, client in tls if sock.pending()] or [
                (key.fileobj, key.data) for key, _ in selector.select(left)
            ]
            for sock, client in ready:
                assert isinstance(sock, socket.socket)
                if not client.receive(sock):
                    selector.unregister(sock)
                    tls = [(other, owner) for other, owner in tls if other is not sock]
                    client.closed(sock)
    return True


class H1Client:
    """HTTP/1.1 to 127.0.0.1:``port``, a connection per request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: dict[int, Stream] = {}
        self._open: dict[socket.socket, int] = {}  # each open connection's stream

    def get(self, path: str, accept: str = "text/event-stream") -> int:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: {accept}\r\n\r\n".encode())
        stream_id = len(self.streams) + 1
        self.streams[stream_id] = Stream()
        self._open[sock] = stream_id
        return stream_id

    def reset(self, stream_id: int) -> None:
        """Leave: close the connection, as a browser does when a page closes its EventSource."""
        self.closed(next(sock for sock, open_id in self._open.items() if open_id == stream_id))

    def sockets(self) -> list[socket.socket]:
        return list(self._open)

    def receive(self, sock: socket.socket) -> bool:
        """Read what ``sock`` has; False once the server has closed it."""
        stream = self.streams[self._open[sock]]
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            stream.reset = not stream.ended
            return False
        stream.body += data
        stream.arrivals.append(time.monotonic())
        if stream.status is None and b" " in stream.body:
            stream.status = int(stream.body.split(b" ", 2)[1])
        stream.ended = stream.body.endswith(b"\r\n0\r\n\r\n")
        return True

    def closed(self, sock: socket.socket) -> None:
        del self._open[sock]
        sock.close()

    def read_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        return read_until([self], condition, timeout)

    def close(self) -> None:
        for sock in self._open:
            sock.close()
        self._open.clear()


class H2Client:
    """One HTTP/2 connection to 127.0.0.1:``port``: TLS with ALPN if ``context`` is given, else h2c (prior knowledge)."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        if context is not None:
            context.set_alpn_protocols(["h2"])
            raw = context.wrap_socket(raw, server_hostname="localhost")
            assert raw.selected_alpn_protocol() == "h2"
        self.sock = raw
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams: dict[int, Stream] = {}
        self.goaway_at: float | None = None
        self.closed_at: float | None = None  # the server closed the connection
        self.settings_received = False
        self._buffer = b""
        self._flush()
        self.authority = f"localhost:{port}"
        self.scheme = "https" if context is not None else "http"

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.closed_at is None:
            self.sock.sendall(data)

    def get(self, path: str, accept: str = "text/event-stream") -> int:
        """Send a GET; its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "GET"),
            (":scheme", self.scheme),
            (":authority", self.authority),
            (":path", path),
            ("accept", accept),
        ]
        self.conn.send_headers(stream_id, headers, end_stream=True)
        self.streams[stream_id] = Stream()
        self._flush()
        return stream_id

    def reset(self, stream_id: int) -> None:
        """Cancel one stream (RST_STREAM CANCEL), as a browser does when a page closes its EventSource."""
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def sockets(self) -> list[socket.socket]:
        return [] if self.closed_at is not None else [self.sock]

    def read_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Read frames until ``condition()`` holds (True) or ``timeout`` passes or the server closes (False)."""
        return read_until([self], condition, timeout)

    def receive(self, sock: socket.socket) -> bool:
        """Read and handle the frames that have come; False once the server has closed the connection."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed_at = time.monotonic()
            for stream in self.streams.values():
                stream.reset = stream.reset or not stream.ended
            return False
        self._buffer += data
        frames = b""
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            frame, self._buffer = self._buffer[: 9 + length], self._buffer[9 + length :]
            if frame[3] == GOAWAY:
                self.goaway_at = self.goaway_at or time.monotonic()
            else:
                frames += frame
        for event in self.conn.receive_data(frames) if frames else []:
            self._handle(event)
        self._flush()
        return True

    def closed(self, sock: socket.socket) -> None:
        """The server closed the connection; the socket is kept to be closed by ``close()``."""

    def max_streams(self) -> int:
        """The streams the server lets this connection have open at once (its SETTINGS_MAX_CONCURRENT_STREAMS)."""
        assert read_until([self], lambda: self.settings_received, 10), "no SETTINGS from the server"
        return int(self.conn.remote_settings.max_concurrent_streams)

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_received = True
        stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if stream is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            stream.status = int(dict(event.headers)[":status"])
        elif isinstance(event, h2.events.DataReceived):
            stream.body += event.data
            stream.arrivals.append(time.monotonic())
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream.reset = True

    def close(self) -> None:
        self.sock.close()
