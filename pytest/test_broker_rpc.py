# SPDX-License-Identifier: Apache-2.0
"""The .broker RPC endpoint (PROTOCOL.md §6, §7), decoded with msgpack."""
import struct

from busclient import OK


def test_test_returns_exact_bytes(broker):
    c = broker.client("c")
    r = c.rpc("test")
    assert r[0] == "reply" and r[2] == bytes([0x81, 0xA2, 0x6F, 0x6B, 0xC3])


def test_info_and_stats(broker):
    c = broker.client("c")
    info = c.rpc("info")[1]
    assert set(info) == {"author", "version"}
    st = c.rpc("stats")[1]
    for k in ("uptime", "r_frames", "r_bytes", "w_frames", "w_bytes"):
        assert isinstance(st[k], int)
    assert st["limits"]["queue_frames_max"] == 10000


def test_client_list_sorted_with_regex_filter(broker):
    c = broker.client("zed")
    keep = [broker.client("collector.a"), broker.client("collector.b")]  # noqa: F841
    names = [x["name"] for x in c.rpc("client.list")[1]["clients"]]
    assert names == ["collector.a", "collector.b", "zed"]
    names = [x["name"] for x in c.rpc("client.list", {"filter": "^coll.*b$"})[1]["clients"]]
    assert names == ["collector.b"]
    assert c.rpc("client.list", {"filter": "("})[:2] == ("error", -32602)
    # patterns are bounded (256 bytes): matching time is not
    assert c.rpc("client.list", {"filter": "a" * 257})[:2] == ("error", -32602)
    assert c.rpc("client.list", {"filter": "^" + "." * 255})[0] == "reply"


def test_params_where_none_allowed_and_unknown_method(broker):
    c = broker.client("c")
    assert c.rpc("test", {"x": 1})[:2] == ("error", -32602)
    assert c.rpc("no.such")[:2] == ("error", -32601)


def test_benchmark_echo(broker):
    c = broker.client("c")
    assert c.rpc("benchmark.test", b"\x92\x01\x02")[2] == b"\x92\x01\x02"


def test_call_id_zero_wants_no_reply(broker):
    c = broker.client("c")
    data = b"\x01" + struct.pack("<I", 0) + b"test\x00"
    assert c.message(".broker", data) == OK
    c.expect_nothing()
