/*
 * sock: nng socket helpers shared by rpc and event.
 *
 * sock_close() closes a socket but waits at most SOCK_CLOSE_WAIT_MS: nng
 * 1.5.2 (Debian 12) can deadlock in nng_close() (nng issues 1543, 1813),
 * seen here about once in 20 runs of a test that closes a REQ socket after a
 * timed-out call, and with SUB sockets. The close runs in a detached thread;
 * on -ETIMEDOUT that thread goes on alone, and the caller must keep alive
 * whatever the socket's callbacks (pipe notifications) may still touch.
 */
#ifndef CKPT_SOCK_H
#define CKPT_SOCK_H

#include <nng/nng.h>

#define SOCK_CLOSE_WAIT_MS 2000

/* 0 once closed, -ETIMEDOUT if nng's close is still stuck. */
int sock_close(nng_socket sock);

#endif
