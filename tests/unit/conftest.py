"""The unit tier runs without a network: a test that reaches for a socket (a stray AWS call, a
server) fails with the address it tried, so pure code stays pure."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


class SocketUsed(AssertionError):
    """A unit test opened a network connection."""


def _refuse_connect(sock: socket.socket, address: Any, *args: Any) -> None:
    raise SocketUsed(f"unit tests use no network; this one tried to reach {address}")


def _refuse_lookup(host: Any, *args: Any, **kwargs: Any) -> None:
    raise SocketUsed(f"unit tests use no network; this one tried to reach {host}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse_lookup)
    yield
