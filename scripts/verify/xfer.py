#!/usr/bin/env python3
"""One MPTCP transfer (IPPROTO_MPTCP, 262) of random bytes, checksummed at both ends. Run as
`python3 -c "$(cat xfer.py)" ...` over SSH: it writes no file and exits by itself.

  server FAMILY PORT [WAIT_S]          listen on the wildcard address of FAMILY (4 or 6; joins
                                       arrive at the server's other addresses, and a listener
                                       bound to one address answers them with RST) at PORT (0:
                                       a free one), print "listening PORT PID", accept one
                                       connection (giving up after WAIT_S seconds, default 30),
                                       read to EOF, reply with a JSON report
                                       {sha256, bytes, subflows}, print it, exit
  client ADDR PORT BYTES [PACE_S [SUBFLOWS [LINGER_S]]]
                                       wait (3 s at most) until the connection has SUBFLOWS
                                       additional subflows, so a fast transfer does not end
                                       before the joins; then send BYTES random bytes (spread
                                       over PACE_S seconds when not 0); then, with LINGER_S,
                                       keep the connection open until it has SUBFLOWS (LINGER_S
                                       seconds at most: a path that comes back during the
                                       transfer may join after the last byte); print
                                       {sha256, bytes, subflows, seconds, server}
  timed ADDR PORT SECONDS SUBFLOWS PROTO [SRC]
                                       a saturating transfer for its rate: over PROTO (mptcp,
                                       or tcp: plain TCP, one path), from SRC when given (bound:
                                       the path's client address), wait for SUBFLOWS as client
                                       does, then send as fast as the connection takes for
                                       SECONDS (a random MiB over and over); seconds counts until
                                       the server's report arrives (it has read every byte);
                                       prints what client prints
subflows is mptcpi_subflows from MPTCP_INFO (additional subflows), read before close; null when
the connection fell back to plain TCP (no MPTCP_INFO). Read at the same moment, each end also
reports the connection's own subflows' addresses (MPTCP_SUBFLOW_ADDRS, kernel >= 5.17):
initial [LOCAL, REMOTE] (the socket's own addresses), joined [[LOCAL, REMOTE], ...] (every other
subflow); joined is null when the kernel cannot tell (plain TCP, an older kernel).
"""
import hashlib, json, os, socket, struct, sys, time

IPPROTO_MPTCP, SOL_MPTCP, MPTCP_INFO, MPTCP_SUBFLOW_ADDRS = 262, 284, 1, 3
# struct mptcp_subflow_data (16 bytes), then per subflow struct mptcp_subflow_addrs: a local and
# a remote sockaddr_storage (128 bytes each)
SFD, SFA = 16, 256


def subflows(s):
    try:
        info = s.getsockopt(SOL_MPTCP, MPTCP_INFO, 64)
    except OSError:
        return None
    return info[0] if len(info) else None


def address(raw):
    fam = struct.unpack_from("=H", raw)[0]
    if fam == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if fam == socket.AF_INET6:
        return plain(socket.inet_ntop(socket.AF_INET6, raw[8:24]))
    return None


def plain(a):
    return a[7:] if a.startswith("::ffff:") and "." in a else a


def initial(s):
    return [plain(s.getsockname()[0]), plain(s.getpeername()[0])]


def joined(s, most=16):
    """[[LOCAL, REMOTE], ...] of every subflow but the initial one, or None. The header goes in
    as input (size_subflow_data, size_user), which socket.getsockopt cannot send: libc's call."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        size = SFD + SFA * most
        buf = ctypes.create_string_buffer(struct.pack("=IIII", SFD, 0, 0, SFA), size)
        n = ctypes.c_uint32(size)
        if libc.getsockopt(s.fileno(), SOL_MPTCP, MPTCP_SUBFLOW_ADDRS, buf, ctypes.byref(n)) != 0:
            return None
        raw = buf.raw[: n.value]
        _, count, _, step = struct.unpack_from("=IIII", raw)
        pairs = [[address(raw[o : o + 128]), address(raw[o + 128 : o + 256])] for o in (SFD + i * step for i in range(count)) if step >= SFA and o + SFA <= len(raw)]
        first = initial(s)
        if first in pairs:
            pairs.remove(first)
        return pairs
    except (ImportError, OSError, AttributeError, struct.error):
        return None


def addrs(s):
    try:
        return {"initial": initial(s), "joined": joined(s)}
    except OSError:
        return {"initial": None, "joined": None}


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def server(fam, port, wait):
    ls = socket.socket(socket.AF_INET6 if fam == "6" else socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::" if fam == "6" else "0.0.0.0", port))
    ls.listen(1)
    ls.settimeout(wait)
    print("listening", ls.getsockname()[1], os.getpid(), flush=True)
    # the listener stays open until the transfer ends: joins (MP_JOIN SYNs) arrive at it, and a
    # closed listener answers them with RST
    c, _ = ls.accept()
    c.settimeout(wait)
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        h.update(b)
        n += len(b)
    report = {"sha256": h.hexdigest(), "bytes": n, "subflows": subflows(c), **addrs(c)}
    c.sendall(json.dumps(report).encode())
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
    ls.close()
    print(json.dumps(report), flush=True)


def await_subflows(s, want, seconds):
    deadline = time.monotonic() + seconds
    while want and (subflows(s) or 0) < want and time.monotonic() < deadline:
        time.sleep(0.01)


def client(addr, port, total, pace, want, linger):
    s = socket.socket(family(addr), socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.settimeout(30)
    s.connect((addr, port))
    await_subflows(s, want, 3)
    h, sent, chunk = hashlib.sha256(), 0, 1 << 16
    start = time.monotonic()
    while sent < total:
        b = os.urandom(min(chunk, total - sent))
        s.sendall(b)
        h.update(b)
        sent += len(b)
        if pace:
            ahead = start + pace * sent / total - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    await_subflows(s, want, linger)
    finish(s, h, sent, start)


def finish(s, h, sent, start):
    """Ends a client's transfer: its subflows and addresses, then the server's reply once it read all; one JSON line."""
    mine, where = subflows(s), addrs(s)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        reply += b
    took = time.monotonic() - start
    s.close()
    print(json.dumps({"sha256": h.hexdigest(), "bytes": sent, "subflows": mine, **where, "seconds": round(took, 3), "server": json.loads(reply)}), flush=True)


def timed(addr, port, seconds, want, proto, src):
    s = socket.socket(family(addr), socket.SOCK_STREAM, IPPROTO_MPTCP if proto == "mptcp" else socket.IPPROTO_TCP)
    s.settimeout(30)
    if src:
        s.bind((src, 0))
    s.connect((addr, port))
    await_subflows(s, want, 3)
    block = memoryview(os.urandom(1 << 20))
    h, sent, chunk, at = hashlib.sha256(), 0, 1 << 16, 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        b = block[at : at + chunk]
        s.sendall(b)
        h.update(b)
        sent += len(b)
        at = (at + chunk) % len(block)
    finish(s, h, sent, start)


if __name__ == "__main__":
    if sys.argv[1] == "timed":
        timed(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7] if len(sys.argv) > 7 else "")
    elif sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 30)
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 0, int(sys.argv[6]) if len(sys.argv) > 6 else 0, float(sys.argv[7]) if len(sys.argv) > 7 else 0)
