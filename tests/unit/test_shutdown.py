"""dualstream's uvicorn protocol (dualstream.servers) on a socket pair in this process: a request accepted as
the server stops is answered. Real servers stopped with streams open: tests/e2e/test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any


def test_a_connection_accepted_as_uvicorn_stops_gets_its_request_answered() -> None:
    """uvicorn's shutdown closes a connection whose request it has not read yet: the client gets a reset.

    A worker at its request limit keeps accepting until its next tick, so requests arrive in that
    window (2 to 4 of 300 plain requests failed so under gunicorn's --max-requests, with or
    without streams). dualstream's protocol reads such a request first, answers it, then closes.
    """
    from uvicorn import Config
    from uvicorn.server import ServerState

    from dualstream.servers import HTTPProtocol

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def accept_then_stop() -> bytes:
        config = Config(app, lifespan="off", log_level="warning")
        config.load()
        served, client = socket.socketpair()
        with client:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.connect_accepted_socket(
                lambda: HTTPProtocol(config=config, server_state=ServerState(), app_state={}), served
            )
            protocol.shutdown()  # the server stops before the request has been read
            client.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            client.setblocking(False)
            answer = b""
            async with asyncio.timeout(5):
                while chunk := await loop.sock_recv(client, 65536):
                    answer += chunk
            return answer

    answer = asyncio.run(accept_then_stop())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\nok")
