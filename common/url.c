#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Schemes whose URL is scheme://host:port[/path]. */
static const char *const url_tcp_schemes[] = {
	"tcp", "tcp4", "tcp6", "tls+tcp", "tls+tcp4", "tls+tcp6", "ws", "ws4", "ws6", "wss",
	"wss4", "wss6",
};

/*
 * Finds the host of a TCP-based url: [*ret_host, *ret_host + *ret_len),
 * without brackets; *ret_rest is what follows it (":port..."), *ret_start
 * where the host part begins (a bracket included). -EINVAL otherwise.
 */
static int
url_host(const char *url, const char **ret_start, const char **ret_host, size_t *ret_len,
    const char **ret_rest)
{
	const char *sep = strstr(url, "://"), *h, *e;
	bool port_optional = strncmp(url, "ws", 2) == 0; /* ws and wss have a default port */
	bool tcp = false;

	if (sep == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(url_tcp_schemes) / sizeof(url_tcp_schemes[0]); i++)
		tcp = tcp || (strlen(url_tcp_schemes[i]) == (size_t)(sep - url) &&
		    strncmp(url, url_tcp_schemes[i], (size_t)(sep - url)) == 0);
	if (!tcp)
		return -EINVAL;
	h = sep + 3;
	*ret_start = h;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL || (e[1] != ':' && !(port_optional && (e[1] == '/' || e[1] == '\0'))))
			return -EINVAL;
		*ret_host = h + 1;
		*ret_len = (size_t)(e - h - 1);
		*ret_rest = e + 1;
		return 0;
	}
	e = h + strcspn(h, ":/");
	if (*e != ':' && !port_optional)
		return -EINVAL; /* no port */
	*ret_host = h;
	*ret_len = (size_t)(e - h);
	*ret_rest = e;
	return 0;
}

bool
url_host_is_wildcard(const char *url)
{
	static const char *const any[] = { "", "*", "0.0.0.0", "::" };
	const char *start, *host, *rest;
	size_t len;

	if (url_host(url, &start, &host, &len, &rest) != 0)
		return false;
	for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++)
		if (strlen(any[i]) == len && strncmp(host, any[i], len) == 0)
			return true;
	return false;
}

int
url_with_host(const char *url, const char *host, char *out, size_t outlen)
{
	const char *start, *old, *rest;
	bool v6 = strchr(host, ':') != NULL;
	size_t len;
	int n;

	if (url_host(url, &start, &old, &len, &rest) != 0 || host[0] == '\0')
		return -EINVAL;
	n = snprintf(out, outlen, "%.*s%s%s%s%s", (int)(start - url), url, v6 ? "[" : "", host,
	    v6 ? "]" : "", rest);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static bool
url_v4_mapped(const nng_sockaddr *sa)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return sa->s_family == NNG_AF_INET6 && memcmp(sa->s_in6.sa_addr, prefix, 12) == 0;
}

int
url_sockaddr_host(const nng_sockaddr *sa, char *out, size_t outlen)
{
	const char *p = NULL;

	if (sa->s_family == NNG_AF_INET)
		p = inet_ntop(AF_INET, &sa->s_in.sa_addr, out, (socklen_t)outlen);
	else if (url_v4_mapped(sa))
		p = inet_ntop(AF_INET, sa->s_in6.sa_addr + 12, out, (socklen_t)outlen);
	else if (sa->s_family == NNG_AF_INET6)
		p = inet_ntop(AF_INET6, sa->s_in6.sa_addr, out, (socklen_t)outlen);
	else
		return -EAFNOSUPPORT;
	return p != NULL ? 0 : -ENAMETOOLONG;
}

int
url_with_peer(const char *url, const nng_sockaddr *peer, char *out, size_t outlen)
{
	const char *sep = strstr(url, "://");
	char family = sep != NULL && sep > url ? sep[-1] : '\0'; /* tcp4, ws6... */
	bool v6 = peer->s_family == NNG_AF_INET6 && !url_v4_mapped(peer);
	char host[64];
	int rv;

	if (peer->s_family != NNG_AF_INET && peer->s_family != NNG_AF_INET6)
		return -EAFNOSUPPORT;
	if ((family == '4' && v6) || (family == '6' && !v6))
		return -EAFNOSUPPORT;
	if (v6 && peer->s_in6.sa_addr[0] == 0xfe && (peer->s_in6.sa_addr[1] & 0xc0) == 0x80)
		return -EADDRNOTAVAIL; /* fe80::/10 */
	rv = url_sockaddr_host(peer, host, sizeof(host));
	return rv != 0 ? rv : url_with_host(url, host, out, outlen);
}

int
url_host_port(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *start, *h, *rest, *pe;
	size_t len, plen;
	int rv;

	rv = url_host(url, &start, &h, &len, &rest);
	if (rv != 0)
		return rv;
	if (*rest != ':')
		return -EINVAL;
	rest++;
	pe = rest + strcspn(rest, "/");
	plen = (size_t)(pe - rest);
	if (plen == 0 || strspn(rest, "0123456789") != plen)
		return -EINVAL;
	if (len >= hostlen || plen >= portlen)
		return -ENAMETOOLONG;
	memcpy(host, h, len);
	host[len] = '\0';
	memcpy(port, rest, plen);
	port[plen] = '\0';
	return 0;
}
