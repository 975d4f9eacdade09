# SPDX-License-Identifier: Apache-2.0
"""Keepalive both ways (PROTOCOL.md §5): NOPs every timeout/2, a silent
client dropped after timeout x 1.25, a pinging one kept."""
import time

from busclient import PING, Busrtd


def test_silent_client_dropped_pinging_client_kept():
    with Busrtd("-t", "0.4") as b:
        silent, alive = b.client("silent"), b.client("alive")
        nops = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            alive.send(PING)
            try:
                f = alive.read_frame(timeout=0.1, skip_nop=False)
                nops += f[0] == "nop"
            except TimeoutError:
                pass
        assert silent.is_closed(timeout=0.5)
        assert nops >= 2
        assert alive.rpc("stats")[1]["disconnects_idle"] == 1
