# SPDX-License-Identifier: Apache-2.0
"""busrt-bench, the measuring tool of make bench, on tiny counts: every
subcommand still runs and reports (the figures themselves belong to make
bench, not to pass/fail tests)."""
import json
import os
import signal
import subprocess

from busclient import BIN, Busrtd

BENCH = os.path.join(BIN, "busrt-bench")


def run(*args):
    p = subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_baselines_and_embedded():
    assert run("raw-stream", "--messages", "10000")["messages"] == 10000
    assert run("raw-pingpong", "--rounds", "200")["calls"] == 200
    assert run("embedded", "--messages", "20000")["messages"] == 20000
    assert run("embedded-rpc", "--calls", "200")["calls"] == 200


# A publisher without acknowledgements can outrun its subscriber on a busy
# machine; with the default 10000-frame queue busrtd would then cut the
# subscriber (BUS/RT's slow-consumer rule, tested elsewhere). Room for all.
ROOMY = """
broker:
  limits:
    queue_bytes_max: 268435456
  standalone:
    buffer_size: 100000
"""


def test_pub_sub_and_rpc_through_busrtd():
    with Busrtd(config=ROOMY) as b:
        sub = subprocess.Popen([BENCH, "sub", "-s", b.path, "-n", "s", "--mask", "bench/#",
                                "--expect", "20000"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        assert "ready" in sub.stderr.readline()
        pub = run("pub", "-s", b.path, "-n", "p", "--messages", "20000")
        assert pub["messages"] == 20000 and pub["host_writes"] >= 1
        out, err = sub.communicate(timeout=30)
        assert sub.returncode == 0, err
        got = json.loads(out)
        assert got["messages"] == 20000 and got["frames_in"] >= 20000
        srv = subprocess.Popen([BENCH, "rpc-server", "-s", b.path, "-n", "bench.server"],
                               stderr=subprocess.PIPE, text=True)
        assert "ready" in srv.stderr.readline()
        assert run("rpc-client", "-s", b.path, "--calls", "100")["calls"] == 100
        # procmond's collector code at full speed: every event acknowledged
        assert run("collector", "-s", b.path, "--messages", "5000")["events"] == 5000
        srv.send_signal(signal.SIGTERM)
        assert srv.wait(timeout=10) == 0
