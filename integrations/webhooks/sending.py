"""One POST to a checked target (targets.Target) with the standard library: connect to
the address that was checked (not a fresh lookup), with a connect and a read timeout,
and keep the start of the reply for the log."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from .targets import Target

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
EXCERPT_BYTES = 1024


@dataclass
class Result:
    status: int | None
    duration_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _open(target: Target, connect_timeout: float, read_timeout: float) -> socket.socket:
    sock = socket.create_connection((target.ip, target.port), timeout=connect_timeout)
    sock.settimeout(read_timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, connect_timeout: float, read_timeout: float):
        super().__init__(target.host, target.port, timeout=read_timeout)
        self._target, self._connect_timeout = target, connect_timeout

    def connect(self) -> None:
        self.sock = _open(self._target, self._connect_timeout, self.timeout)


_tls = ssl.create_default_context()


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, connect_timeout: float, read_timeout: float):
        super().__init__(target.host, target.port, timeout=read_timeout, context=_tls)
        self._target, self._connect_timeout = target, connect_timeout

    def connect(self) -> None:
        sock = _open(self._target, self._connect_timeout, self.timeout)
        # The certificate must name the host of the URL, whatever address it came from.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> Result:
    """POST `body`; any network error or timeout is a failed Result, never raised."""
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = kind(target, connect_timeout, read_timeout)
    started = time.monotonic()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
        return Result(
            status=response.status,
            duration_ms=_ms(started),
            excerpt=excerpt.decode("utf-8", "replace")[:EXCERPT_BYTES],
        )
    except TimeoutError:
        return Result(None, _ms(started), error="timed out")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Result(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
