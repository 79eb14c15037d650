#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "url.h"
#include "util.h"

/* The closing thread and the caller share the closer; the last one frees it. */
struct sock_closer {
	nng_socket cl_sock;
	pthread_mutex_t cl_mu;
	pthread_cond_t cl_cv;
	int cl_done;
	int cl_refs; /* the closing thread and the waiter */
};

static void
sock_closer_put(struct sock_closer *cl)
{
	int last;
	pthread_mutex_lock(&cl->cl_mu);
	last = --cl->cl_refs == 0;
	pthread_mutex_unlock(&cl->cl_mu);
	if (last) {
		pthread_mutex_destroy(&cl->cl_mu);
		pthread_cond_destroy(&cl->cl_cv);
		free(cl);
	}
}

static void *
sock_closer_main(void *arg)
{
	struct sock_closer *cl = arg;
	nng_close(cl->cl_sock);
	pthread_mutex_lock(&cl->cl_mu);
	cl->cl_done = 1;
	pthread_cond_signal(&cl->cl_cv);
	pthread_mutex_unlock(&cl->cl_mu);
	sock_closer_put(cl);
	return NULL;
}

int
sock_close(nng_socket sock)
{
	struct sock_closer *cl = calloc(1, sizeof(*cl));
	struct timespec until;
	pthread_attr_t attr;
	pthread_t t;
	int rv = 0, done;

	if (cl == NULL) {
		nng_close(sock); /* no memory for the guard: close inline */
		return 0;
	}
	cl->cl_sock = sock;
	cl->cl_refs = 2;
	pthread_mutex_init(&cl->cl_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->cl_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, sock_closer_main, cl) != 0) {
		pthread_attr_destroy(&attr);
		free(cl);
		nng_close(sock);
		return 0;
	}
	pthread_attr_destroy(&attr);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += SOCK_CLOSE_WAIT_MS / 1000;
	until.tv_nsec += (long)(SOCK_CLOSE_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cl->cl_mu);
	while (!cl->cl_done && rv == 0)
		rv = pthread_cond_timedwait(&cl->cl_cv, &cl->cl_mu, &until);
	done = cl->cl_done;
	pthread_mutex_unlock(&cl->cl_mu);
	sock_closer_put(cl);
	return done ? 0 : -ETIMEDOUT;
}

/* connect() of one address, waiting until deadline_ms (monotonic). */
/*
 * How a probe that got in leaves. nng 1.5.2 stops a listener for good when
 * a connection closes during the SP handshake (its read of the header ends
 * in NNG_ECLOSED, which the listener takes for its own close; nng issue
 * 1518, fixed in 1.6): a probe that connected and closed at once left a live
 * server that accepted no new connection again. So a probe of ipc:// or
 * tcp:// completes the handshake as a REQ client (the only kind that
 * probes: rpc.c) before it closes, and the server sees a peer that came and
 * went; one of tls+tcp://, which cannot, resets the connection instead
 * (ECONNRESET, after which the listener goes on accepting).
 */
enum sock_probe_exit { SOCK_PROBE_SP, SOCK_PROBE_RESET };

/* The SP header of a REQ v0 peer: "\0SP\0", protocol 0x0030, two zero bytes. */
static const uint8_t sock_sp_req0[8] = { 0, 'S', 'P', 0, 0x00, 0x30, 0, 0 };

/* Sends our header and reads the peer's (8 bytes), until deadline_ms at most. */
static void
sock_probe_handshake(int fd, uint64_t deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t head[8];
	size_t got = 0;

	if (send(fd, sock_sp_req0, sizeof(sock_sp_req0), MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(sock_sp_req0))
		return;
	while (got < sizeof(head)) {
		uint64_t now = util_now_mono_ms();
		ssize_t n;

		if (now >= deadline_ms || poll(&pfd, 1, (int)(deadline_ms - now)) <= 0)
			return;
		n = recv(fd, head + got, sizeof(head) - got, 0);
		if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
			return;
		if (n > 0)
			got += (size_t)n;
	}
}

static int
sock_probe_addr(int family, const struct sockaddr *sa, socklen_t salen, uint64_t deadline_ms,
    enum sock_probe_exit how)
{
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, e = 0, rv;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, sa, salen) == 0) {
		rv = 0;
		goto out;
	}
	if (errno != EINPROGRESS && errno != EAGAIN) {
		rv = -errno;
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	for (;;) {
		uint64_t now = util_now_mono_ms();
		int n;

		if (now >= deadline_ms) {
			rv = -ETIMEDOUT;
			goto out;
		}
		n = poll(&pfd, 1, (int)(deadline_ms - now));
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			rv = -errno;
			goto out;
		}
	}
	rv = getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0 ? -errno : -e;
out:
	if (rv == 0 && how == SOCK_PROBE_SP) {
		sock_probe_handshake(fd, deadline_ms);
	} else if (rv == 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
	return rv;
}

int
sock_probe(const char *url, unsigned timeout_ms)
{
	uint64_t deadline_ms = util_now_mono_ms() + timeout_ms;
	struct addrinfo hints, *res = NULL;
	char host[256], port[16];
	int rv;

	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(url + 6) >= sizeof(sun.sun_path))
			return -ENAMETOOLONG;
		strcpy(sun.sun_path, url + 6);
		rv = sock_probe_addr(AF_UNIX, (const struct sockaddr *)&sun, sizeof(sun), deadline_ms,
		    SOCK_PROBE_SP);
		return rv == -ENOENT ? -ECONNREFUSED : rv;
	}
	if (url_host_port(url, host, sizeof(host), port, sizeof(port)) != 0)
		return -ENOTSUP;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = strstr(url, "4://") != NULL ? AF_INET :
	    strstr(url, "6://") != NULL ? AF_INET6 : AF_UNSPEC;
	if (getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	/* Refused only when every address refuses; any other answer is not a "no". */
	rv = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int r = sock_probe_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline_ms,
		    strncmp(url, "tls+", 4) == 0 ? SOCK_PROBE_RESET : SOCK_PROBE_SP);
		if (r == 0) {
			rv = 0;
			break;
		}
		if (r != -ECONNREFUSED)
			rv = r;
	}
	freeaddrinfo(res);
	return rv;
}
