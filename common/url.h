/*
 * url: the host part of nng URLs (tcp://host:port and its kin), for address
 * discovery. An agent that listens on every interface (tcp://0.0.0.0:7431)
 * cannot announce that address: nobody can dial it. The manager puts the
 * address the agent's connection came from in its place.
 */
#ifndef CKPT_URL_H
#define CKPT_URL_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>

/*
 * Whether url is a TCP-based one (tcp, tcp4, tcp6, tls+tcp..., ws, wss)
 * whose host means "every interface": empty, "*", 0.0.0.0, :: or [::].
 */
bool url_host_is_wildcard(const char *url);

/*
 * url with its host replaced by host (an IPv6 address is bracketed); the
 * scheme, port and path stay. -EINVAL when url has no host part that can
 * be replaced, -ENAMETOOLONG when out is too small.
 */
int url_with_host(const char *url, const char *host, char *out, size_t outlen);

/*
 * The IP address of sa as text (IPv6 without brackets; an IPv4-mapped one,
 * as a dual-stack listener sees IPv4 peers, as IPv4) into out, which has
 * room for at least 46 bytes. -EAFNOSUPPORT for anything but IPv4 and IPv6.
 */
int url_sockaddr_host(const nng_sockaddr *sa, char *out, size_t outlen);

/*
 * url_with_host() with the address of peer, when it can be dialed back with
 * url's scheme: -EAFNOSUPPORT when peer is not IP or its family is not the
 * scheme's (tcp4 and an IPv6 peer, say), -EADDRNOTAVAIL for an IPv6
 * link-local peer (its scope does not travel in a URL).
 */
int url_with_peer(const char *url, const nng_sockaddr *peer, char *out, size_t outlen);

/*
 * The host (without brackets) and port of a TCP-based url, as text, for
 * getaddrinfo(). -EINVAL when url is not TCP-based or has no port (ws and
 * wss without one), -ENAMETOOLONG when they do not fit.
 */
int url_host_port(const char *url, char *host, size_t hostlen, char *port, size_t portlen);

#endif
