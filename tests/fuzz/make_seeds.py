#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_manager and fuzz_agent (tests/fuzz/seeds/).

Each seed is one input as the targets read it: the method's index (one
byte), then the request message, encoded. The names are those of the
cluster the targets build (fz_cluster.h): node fz-node runs fz-demo, which
has a checkpoint; fz-ghost-a runs fz-ghost-comp and never answers, nor does
fz-ghost-b. Run it again after a change of the .proto files:
    python3 tests/fuzz/make_seeds.py
"""
import os
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def u(field, n):
    return varint(field << 3) + varint(n)


def s(field, v):
    if isinstance(v, str):
        v = v.encode()
    return varint(field << 3 | 2) + varint(len(v)) + v


def label(k, v):
    return s(1, k) + s(2, v)


def comp(name, state="running", kind="demo", seq=0, epoch=0):
    return s(1, name) + s(2, state) + s(3, kind) + (u(4, seq) if seq else b"") + \
        (u(5, epoch) if epoch else b"")


SHA = bytes(range(32))
CAP = u(1, 1 << 30) + u(2, 2 << 30) + u(3, 2) + u(4, 500)

MANAGER = {
    "attach": (0, s(1, "fz-seed-n") + s(2, "ipc://fz-seed-n.sock") + s(3, CAP) +
               s(4, label("zone", "a")) + s(5, comp("fz-seed-c")) + u(6, 7) +
               s(7, comp("fz-seed-d", state="declared"))),
    "attach-claim": (0, s(1, "fz-node") + s(2, "ipc://fz-claim.sock") + u(6, 9)),
    "notify": (1, s(1, s(1, "fz-ghost-a") + s(2, "fz-ghost-comp") + u(3, 1) + u(4, 2) +
                    u(5, 4096) + u(7, 1) + u(8, 1) + s(9, "demo") + s(10, SHA))),
    "migrate": (2, s(1, "fz-demo") + s(2, "fz-ghost-b")),
    "migrate-placed": (2, s(1, "fz-demo")),
    "heartbeat": (3, s(1, "fz-ghost-a") + s(2, CAP) + s(3, comp("fz-ghost-comp", seq=1)) +
                  u(4, 1) + u(5, 0) + u(6, 1)),
    "heartbeat-stranger": (3, s(1, "fz-node") + u(6, 12345)),
    "list-nodes": (4, b""),
    "list-checkpoints": (5, s(1, "fz-node") + s(2, "fz-demo")),
    "info": (6, b""),
    "drain": (7, s(1, "fz-ghost-a")),
    "cordon": (8, s(1, "fz-ghost-b")),
    "uncordon": (9, s(1, "fz-ghost-b")),
    "forget": (10, s(1, "fz-node") + s(2, "fz-demo") + u(3, 1)),
    "apply": (11, s(1, s(1, "fz-applied") + s(2, "demo") + s(3, u(1, 4096)) +
                    s(7, label("zone", "")) + u(9, 1))),
    "delete": (12, s(1, "fz-ghost-comp")),
}

AGENT = {
    "restore": (0, s(1, "fz-demo") + s(2, "fz-node") + u(5, 9)),
    "restore-seq": (0, s(1, "fz-demo") + u(3, 1) + s(4, SHA) + u(5, 9) +
                    s(6, label("zone", "b")) + s(7, "demo")),
    "restore-spec": (0, s(1, "fz-new") + u(5, 1) + s(8, s(1, "fz-new") + s(2, "demo") +
                                                      s(3, u(1, 4096))) + u(9, 1)),
    "stop": (1, s(1, "fz-demo") + u(2, 1)),
    "stop-no-ckpt": (1, s(1, "fz-demo")),
    "checkpoint-now": (2, s(1, "fz-demo")),
    "checkpoint-all": (2, b""),
    "status": (3, b""),
}


def main():
    top = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "seeds")
    for target, seeds in (("manager", MANAGER), ("agent", AGENT)):
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for name, (method, body) in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(bytes([method]) + body)


if __name__ == "__main__":
    main()
