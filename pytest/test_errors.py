# SPDX-License-Identifier: Apache-2.0
"""Errors that tell the truth: each names the thing, the real cause and,
where there is one, the limit and its value. One test per message a user
met with the wrong or an empty reason."""
import os
import signal
import subprocess
import tempfile
import time

from busclient import BIN, Busrtd

AGENT = os.path.join(BIN, "daemoneye-agent")
BUSRTD = os.path.join(BIN, "busrtd")
CLI = os.path.join(BIN, "busrt-cli")


def run(argv, timeout=20, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def agent_log(cfg_text, until, seconds=10):
    """Runs the agent on cfg_text until its stderr holds until (or for
    seconds), stops it with SIGTERM; its exit status and stderr."""
    d = tempfile.mkdtemp(prefix="er", dir="/tmp")
    cfg = os.path.join(d, "agent.yaml")
    with open(cfg, "w") as f:
        f.write(cfg_text.format(dir=d))
    errpath = os.path.join(d, "stderr")
    with open(errpath, "w") as err:
        p = subprocess.Popen([AGENT, "--config", cfg], stderr=err)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and until not in open(errpath).read():
            if p.poll() is not None:
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
    log = open(errpath).read()
    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))
    os.rmdir(d)
    return rc, log


def test_a_missing_collector_binary_says_no_such_file():
    cfg = ("broker:\n  embedded:\n    transport: {{type: unix_socket, path: {dir}/b.sock}}\n"
           "agent:\n  collectors:\n    - id: p1\n      type: process\n"
           "      command: [/no/such/procmond]\n")
    want = "p1: spawn failed (/no/such/procmond: no such file or directory"
    rc, log = agent_log(cfg, want)
    assert rc == 0 and want in log, log
    assert "(is the collector installed? its path is agent.collectors[].command)" in log, log
    assert "input/output error" not in log, log
    # and --check-config says so before anything runs
    d = tempfile.mkdtemp(prefix="er", dir="/tmp")
    try:
        path = os.path.join(d, "a.yaml")
        with open(path, "w") as f:
            f.write(cfg.format(dir=d))
        r = run([AGENT, "--config", path, "--check-config"])
        assert r.returncode == 2, r
        assert (f"{path}: collector p1: /no/such/procmond: No such file or directory"
                in r.stderr), r.stderr
        with open(path, "w") as f:
            f.write(cfg.format(dir=d).replace("/no/such/procmond", "no-such-collector"))
        r = run([AGENT, "--config", path, "--check-config"])
        assert r.returncode == 2 and "no-such-collector: not found in PATH" in r.stderr, r
    finally:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)


def test_a_broker_never_reached_is_not_a_connection_lost():
    cfg = ("broker:\n  mode: standalone\n  standalone:\n    socket: {dir}/none.sock\n"
           "agent:\n  collectors: []\n")
    rc, log = agent_log(cfg, "cannot reach the broker")
    assert rc == 0, log
    assert "cannot reach the broker (connect " in log, log
    assert "none.sock: no such file or directory); retrying" in log, log
    assert "connection lost" not in log, log


def test_a_socket_in_a_missing_directory_and_no_exit_stats():
    r = run([BUSRTD, "-B", "/nonexistent-dir-a/dir/x.sock"])
    assert r.returncode == 1, r
    assert ("/nonexistent-dir-a/dir: cannot create the socket's directory: "
            "No such file or directory (only its last part is created: create the "
            "parent first, or choose another path)") in r.stderr, r.stderr
    assert "permission denied" not in r.stderr.lower()
    assert "exit stats" not in r.stderr, r.stderr


def test_a_publish_over_the_frame_limit_names_the_limit():
    d = tempfile.mkdtemp(prefix="er", dir="/tmp")
    big = os.path.join(d, "big")
    try:
        with open(big, "wb") as f:
            f.write(b"a" * 17_000_000)
        with Busrtd() as b:
            for qos in ("0", "1"):
                r = run([CLI, "-s", b.path, "publish", "t/x", f"@{big}", "--qos", qos])
                assert r.returncode == 1, r
                assert ("publish: DATA is 17000000 bytes; one frame holds at most "
                        "16777216 (the client's out_bytes_max") in r.stderr, r.stderr
                assert "payload_bytes_max" in r.stderr
    finally:
        os.unlink(big)
        os.rmdir(d)


def test_a_port_in_use_says_what_to_do():
    from busclient import free_port
    port = free_port()
    with Busrtd("-B", f"127.0.0.1:{port}", config="broker:\n  acl: open\n"):
        r = run([BUSRTD, "-B", f"127.0.0.1:{port}"])
    assert r.returncode == 1, r
    assert (f"127.0.0.1:{port}: address already in use (another process listens "
            "there: stop it, or choose another port)") in r.stderr, r.stderr
    assert "exit stats" not in r.stderr


def test_a_stray_argument_and_a_missing_mask_say_so():
    # procmond takes options only: a stray word is named, not reported as
    # a missing --connect
    r = run([os.path.join(BIN, "procmond"), "--connect", "/tmp/x.sock", "--id", "p1", "extra"])
    assert r.returncode == 2
    assert "procmond: unexpected argument 'extra'" in r.stderr, r.stderr
    # the bridge without a topic mask says how to give one
    d = tempfile.mkdtemp(prefix="er", dir="/tmp")
    cfg = os.path.join(d, "bridge.yaml")
    with open(cfg, "w") as f:
        f.write("bridge:\n  connect: /tmp/x.sock\n  nats: {urls: [nats://127.0.0.1:1]}\n"
                "  masks: []\n")
    r = run([os.path.join(BIN, "busrt-bridge"), "--config", cfg, "--check-config"])
    os.unlink(cfg)
    os.rmdir(d)
    assert r.returncode == 2
    assert "give --mask MASK or bridge.masks" in r.stderr, r.stderr
