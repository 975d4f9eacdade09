# SPDX-License-Identifier: Apache-2.0
"""Addresses as BUS/RT and the usual tools take them: host names (resolved
with getaddrinfo: busrtd -B binds every address of the name, the client
tries each in turn), IPv6 in brackets, and BUS/RT's rule that a path
ending in .sock, .socket or .ipc is a Unix socket even with a ':' in it.
Bad addresses are refused up front with what is wrong."""
import os
import socket
import subprocess
import tempfile

import pytest

from busclient import ALL_GRANTS, BIN, Busrtd, free_port

CLI = os.path.join(BIN, "busrt-cli")
BUSRTD = os.path.join(BIN, "busrtd")
PROCMOND = os.path.join(BIN, "procmond")
ACL = ("broker:\n  acl:\n    - who: {from: 127.0.0.1}\n" + ALL_GRANTS +
       "    - who: {from: '::1'}\n" + ALL_GRANTS + "    - who: {uid: 0}\n" + ALL_GRANTS)


def run(argv, timeout=20, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def localhost_addrs():
    return sorted({ai[4][0] for ai in socket.getaddrinfo(
        "localhost", 1, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)})


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_a_host_name_for_the_listener_and_the_client():
    port = free_port()
    with Busrtd("-B", f"localhost:{port}", config=ACL) as b:
        log = b.log()
        assert f"listening on localhost:{port}" in log, log
        # the client resolves the name as the broker did
        r = run([CLI, "-s", f"localhost:{port}", "broker", "test"])
        assert r.returncode == 0, r.stderr
        # every address the name has is bound
        for a in localhost_addrs():
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            s = socket.socket(fam)
            s.settimeout(3)
            s.connect((a, port))
            s.close()


def test_an_unknown_host_name_is_named_in_the_error():
    r = run([CLI, "-s", "no-such-host.invalid:1", "--timeout", "3", "broker", "test"])
    assert r.returncode == 1, r
    assert "resolve no-such-host.invalid: " in r.stderr, r.stderr
    r = run([BUSRTD, "-B", "no-such-host.invalid:1"])
    assert r.returncode == 2, r  # bad input, like an address that does not parse
    assert "no-such-host.invalid:1: cannot resolve no-such-host.invalid" in r.stderr, r.stderr
    assert "exit stats" not in r.stderr


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_in_brackets():
    port = free_port()
    with Busrtd("-B", f"[::1]:{port}", config=ACL):
        r = run([CLI, "-s", f"[::1]:{port}", "broker", "test"])
        assert r.returncode == 0, r.stderr


def test_ipv6_without_brackets_is_refused_up_front():
    for argv in ([CLI, "-s", "::1:9924", "broker", "test"],
                 [BUSRTD, "-B", "::1:9924"],
                 [PROCMOND, "--connect", "::1:9924", "--id", "p1"]):
        r = run(argv)
        assert r.returncode == 2, (argv, r)
        assert "::1:9924: an IPv6 address goes in brackets: [ADDR]:PORT" in r.stderr, r.stderr
        assert "exit stats" not in r.stderr


def test_busrt_suffixes_mean_a_unix_socket():
    d = tempfile.mkdtemp(prefix="ad", dir="/tmp")
    try:
        for name in ("host:1.sock", "host:2.socket", "host:3.ipc"):
            b = subprocess.Popen([BUSRTD, "-B", name], cwd=d, stderr=subprocess.PIPE,
                                 text=True)
            try:
                line = b.stderr.readline()
                assert f"listening on {name}" in line, line
                assert os.path.exists(os.path.join(d, name))
                r = run([CLI, "-s", name, "broker", "test"], cwd=d)
                assert r.returncode == 0, r.stderr
            finally:
                b.terminate()
                assert b.wait(timeout=20) == 0
                b.stderr.close()
            assert not os.path.exists(os.path.join(d, name))
    finally:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)
