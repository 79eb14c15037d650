/*
 * sock: nng socket helpers shared by rpc and event.
 *
 * sock_close() closes a socket but waits at most SOCK_CLOSE_WAIT_MS. In nng
 * 1.5.2 (Debian 12) every pipe is torn down by one global reaper thread, and
 * req0_pipe_stop() waits for the pipe's pending send. When both ends of a
 * connection live in the same process (the unit tests) and one end sends a
 * message the other refuses (larger than its receive limit), the reaper
 * waits for a send that only the other end's teardown, queued behind it on
 * the same reaper, would end: every later nng_close() of that process then
 * hangs (seen about once in 20 runs; with nng 1.5.2 built with symbols the
 * reaper is stuck in req0_pipe_stop -> nni_aio_stop(aio_send)). Between
 * processes the peer's own teardown ends the send. The close runs in a
 * detached thread; on -ETIMEDOUT that thread goes on alone, and the caller
 * must keep alive whatever the socket's callbacks (pipe notifications) may
 * still touch.
 */
#ifndef CKPT_SOCK_H
#define CKPT_SOCK_H

#include <nng/nng.h>

#define SOCK_CLOSE_WAIT_MS 2000

/* 0 once closed, -ETIMEDOUT if nng's close is still stuck. */
int sock_close(nng_socket sock);

/*
 * Whether anything listens at url, by a plain connect() to its address
 * (TCP-based schemes and ipc://), waiting at most timeout_ms: 0 when
 * something accepted, -ECONNREFUSED when every address refused (for ipc://,
 * also a socket file that is missing), -ETIMEDOUT when no answer came in
 * time (a partition looks like this), -ENOTSUP for a scheme it cannot probe
 * (inproc://, ws:// without a port), another -errno for a name that does not
 * resolve. A connection it made is closed once it has done the SP handshake
 * of a REQ peer (tls+tcp://: reset at once), never during it: nng 1.5.2
 * listeners stop accepting after a peer that leaves mid-handshake.
 */
int sock_probe(const char *url, unsigned timeout_ms);

#endif
