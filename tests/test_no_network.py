import socket
import urllib.request

import pytest

from tests.conftest import NetworkAccessError


def test_outbound_connection_is_refused() -> None:
    with pytest.raises(NetworkAccessError):
        urllib.request.urlopen("http://example.com", timeout=2)


def test_raw_socket_is_refused() -> None:
    with pytest.raises(NetworkAccessError):
        socket.create_connection(("93.184.216.34", 80), timeout=2)


def test_loopback_connection_returns_a_connected_socket() -> None:
    """Local servers (the web app, chromedriver) stay reachable: create_connection to loopback works as usual."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2) as client:
            assert isinstance(client, socket.socket) and client.getpeername() == server.getsockname()
