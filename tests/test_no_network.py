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
