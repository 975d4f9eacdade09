# SPDX-License-Identifier: Apache-2.0
"""busrtd's command line and configuration: bad input names what was
wrong and exits 2; stale sockets are replaced, live ones are not."""
import os
import socket
import subprocess
import tempfile

import pytest
from busclient import BUSRTD, Busrtd


def run(*args, config=None):
    d = tempfile.mkdtemp(prefix="bc", dir="/tmp")
    argv = [BUSRTD, "-B", os.path.join(d, "s.sock"), *args]
    if config is not None:
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write(config)
        argv += ["--config", path]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return p.returncode, p.stderr


@pytest.mark.parametrize("args", [["--bogus"], ["-t", "abc"], ["--queue-size", "1"],
                                  ["--log-level", "loud"], ["extra"]])
def test_bad_arguments_exit_2(args):
    rc, err = run(*args)
    assert rc == 2 and err


@pytest.mark.parametrize("config,needle", [
    ("broker:\n  nope: 1\n", "c.yaml:2: broker.nope: unknown key"),
    ("broker:\n  limits:\n    topic_levels_max: many\n", "c.yaml:3: broker.limits.topic_levels_max"),
    ("broker:\n  queue_policy: lossy\n", "c.yaml:2: broker.queue_policy: expected block, disconnect or drop_newest"),
    ("broker:\n  low_water_percent: 100\n", "c.yaml:2: broker.low_water_percent"),
    ("broker:\n  standalone:\n    tls:\n      enabled: true\n", "c.yaml:4: broker.standalone.tls: a TLS listener needs cert_file and key_file"),
    ("broker: [1, 2\n", "YAML error"),
    ("broker:\n  limits: &a [*a, *a, *a]\n  embedded: *a\n", "broker.limits: expected a mapping"),
    # libyaml's scanner is quadratic in nesting: refused at the first event
    # past 8 levels (this 64 KiB file took 6 s to load before)
    ("broker: " + "[" * 32768 + "]" * 32768 + "\n", "c.yaml:1: nested deeper than 8 levels"),
    ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 9)) + "  " * 9 + "v: 1\n",
     "nested deeper than 8 levels"),
])
def test_bad_config_names_file_line_key(config, needle):
    rc, err = run(config=config)
    assert rc == 2
    assert needle in err, err


def test_missing_config_file_says_which():
    rc, err = run("--config", "/nonexistent/x.yaml")
    assert rc == 2 and "/nonexistent/x.yaml" in err


def test_stale_socket_replaced_live_one_refused():
    d = tempfile.mkdtemp(prefix="st", dir="/tmp")
    path = os.path.join(d, "s.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)  # a socket file nobody listens on: stale
    s.close()
    b = Busrtd()
    b.path = path
    with b:
        c = b.client("x")
        rc = subprocess.run([BUSRTD, "-B", path], capture_output=True, text=True, timeout=10)
        assert rc.returncode != 0 and "live broker" in rc.stderr
        assert c.rpc("test")[0] == "reply"


def test_socket_mode_default_0600():
    with Busrtd() as b:
        assert os.stat(b.path).st_mode & 0o777 == 0o600
