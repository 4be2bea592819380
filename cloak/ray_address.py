"""A Ray head's address: parsed and checked for an answer without importing Ray, so a wrong
``--cluster`` fails at once."""
from __future__ import annotations

import os
import socket

CONNECT_TIMEOUT_S = 3.0  # TCP check of a cluster address before Ray is asked to join it
JOIN_TIMEOUT_S = 5  # an address that answers but is not a Ray head fails after this (Ray: 20 s)


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); anything else is a :class:`ValueError`."""
    if address.startswith("ray://"):
        raise ValueError(f"--cluster {address}: Ray Client addresses are not supported; run cloak on a node "
                         "of the cluster and give the head's HOST:PORT (e.g. 10.0.0.5:6379)")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--cluster {address}: expected HOST:PORT of the Ray head (e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> tuple[str, int]:
    """A TCP connection to the head within :data:`CONNECT_TIMEOUT_S`, else :class:`ConnectionError`."""
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ConnectionError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None
    return host, port


def quick_join() -> None:
    """Joining an address that answers but is not a Ray head gives up after about
    :data:`JOIN_TIMEOUT_S` (one try a second) instead of Ray's 20 s."""
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(JOIN_TIMEOUT_S))
