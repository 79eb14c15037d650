# spproxy.py LISTEN TARGET HOLD LOG [NAME]: a proxy between agents and a
# manager on 127.0.0.1 (plain SP over tcp: an 8-byte handshake, then frames of
# an 8-byte length and a body) that holds the agents' messages while the file
# HOLD exists, to put a race in a test's hands. Without NAME: the first frame
# sent while HOLD exists is held, sent when HOLD goes; the frames after it go
# on (integration_delete_stale_beat). With NAME: from the second frame naming
# NAME on, if HOLD exists then, every frame is held, all sent in order when
# HOLD goes (integration_delete_fresh). Replies pass unchanged. LOG gets
# "listening", "held" and "released [N]" lines.
import os
import socket
import sys
import threading

listen, target, hold, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
name = sys.argv[5].encode() if len(sys.argv) > 5 else None
lock = threading.Lock()


def say(line):
    with lock, open(log, "a") as f:
        f.write(line + "\n")


def recv_n(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def plain(src, dst):
    try:
        while True:
            c = src.recv(65536)
            if not c:
                break
            dst.sendall(c)
    except (EOFError, OSError):
        pass


def wait_release():
    while os.path.exists(hold):
        threading.Event().wait(0.02)


def held_send(dst, frame):
    wait_release()
    with lock:
        dst.sendall(frame)
    say("released")


def flush_on_release(dst, st):
    wait_release()
    with lock:
        for f in st["queue"]:
            dst.sendall(f)
        st["queue"] = None
    say("released %d" % st["n"])


def hold_one(src, dst):
    taken = False
    while True:
        head = recv_n(src, 8)
        frame = head + recv_n(src, int.from_bytes(head, "big"))
        if os.path.exists(hold) and not taken:
            taken = True
            say("held")
            threading.Thread(target=held_send, args=(dst, frame), daemon=True).start()
            continue
        if not os.path.exists(hold):
            taken = False
        with lock:
            dst.sendall(frame)


def hold_from_name(src, dst):
    st = {"queue": None, "n": 0, "done": False}
    seen = 0
    while True:
        head = recv_n(src, 8)
        frame = head + recv_n(src, int.from_bytes(head, "big"))
        if name in frame:
            seen += 1
        froze = False
        with lock:
            if st["queue"] is None and not st["done"] and seen == 2 and os.path.exists(hold):
                st["queue"], st["done"], froze = [], True, True
            if st["queue"] is not None:
                st["queue"].append(frame)
                st["n"] += 1
            else:
                dst.sendall(frame)
        if froze:
            say("held")
            threading.Thread(target=flush_on_release, args=(dst, st), daemon=True).start()


def agent_side(src, dst):
    try:
        dst.sendall(recv_n(src, 8))
        (hold_from_name if name is not None else hold_one)(src, dst)
    except (EOFError, OSError):
        pass


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen))
srv.listen(8)
say("listening")
while True:
    a, _ = srv.accept()
    m = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=agent_side, args=(a, m), daemon=True).start()
    threading.Thread(target=plain, args=(m, a), daemon=True).start()
