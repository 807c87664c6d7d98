"""Shared fixtures. Every test runs with the network cut: the toolkit must never download anything."""
from __future__ import annotations

import socket

import numpy as np
import pytest


class NetworkAccessError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any outbound connection fail loudly (AF_UNIX sockets, used by torch.distributed's gloo store, stay usable)."""

    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise NetworkAccessError(f"network access attempted in a test: {address!r}")
        return real_connect(self, address, *args, **kwargs)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1", None):
            raise NetworkAccessError(f"DNS lookup attempted in a test: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    real_create_connection = socket.create_connection

    def guarded_create_connection(address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise NetworkAccessError(f"network access attempted in a test: {address!r}")
        return real_create_connection(address, *args, **kwargs)  # loopback: a connected socket, as callers expect

    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
