# SPDX-License-Identifier: Apache-2.0
"""A bus client run as another user (the ACL tests start it under
setpriv): registers NAME on SOCKET, does each operation of OPS (JSON), and
prints one JSON line of results. Operations: ["pub", topic], ["sub", mask],
["msg", target], ["bcast", mask], ["list"], ["read", seconds] (frames seen).
The result of each is the broker's ACK code (or the frames / clients)."""
import json
import sys

from busclient import Client, Closed


def main(sock, name, ops):
    c = Client(sock)
    out = {"register": c.handshake(name), "results": []}
    if out["register"] != 1:
        print(json.dumps(out))
        return
    for op in ops:
        try:
            if op[0] == "pub":
                r = c.publish(op[1], b"from " + name.encode())
            elif op[0] == "sub":
                r = c.subscribe(op[1])
            elif op[0] == "msg":
                r = c.message(op[1], b"\x01\x01\x00\x00\x00x\x00")
            elif op[0] == "bcast":
                r = c.broadcast(op[1], b"hi")
            elif op[0] == "list":
                r = c.rpc("client.list")[1]["clients"]
            elif op[0] == "read":
                r = []
                try:
                    while True:
                        f = c.read_frame(timeout=op[1])
                        r.append([x.decode("utf-8", "replace") if isinstance(x, bytes) else x
                                  for x in f[:3]])
                except (TimeoutError, Closed):
                    pass
            else:
                r = f"unknown op {op[0]}"
        except (TimeoutError, Closed) as e:
            r = f"{type(e).__name__}: {e}"
        out["results"].append(r)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
