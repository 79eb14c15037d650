#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "err.h"
#include "url.h"

/* A PEM file bigger than this is not a certificate, a chain or a key. */
#define TLS_PEM_MAX (1u << 20)

static const char *const tls_schemes[] = {
	"tls+tcp://", "tls+tcp4://", "tls+tcp6://", "wss://", "wss4://", "wss6://",
};

bool
tls_url_is_tls(const char *url)
{
	for (size_t i = 0; i < sizeof(tls_schemes) / sizeof(tls_schemes[0]); i++)
		if (strncmp(url, tls_schemes[i], strlen(tls_schemes[i])) == 0)
			return true;
	return false;
}

bool
tls_url_is_loopback(const char *url)
{
	char host[256], port[16];
	struct in_addr a4;
	struct in6_addr a6;

	if (url_host_port(url, host, sizeof(host), port, sizeof(port)) != 0) {
		/* ws:// without a port: url_host_port wants one; none is loopback then. */
		return false;
	}
	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* A plain TCP-based scheme (tcp, tcp4, tcp6, ws, ws4, ws6). */
static bool
tls_url_is_plain_tcp(const char *url)
{
	static const char *const plain[] = {
		"tcp://", "tcp4://", "tcp6://", "ws://", "ws4://", "ws6://",
	};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strncmp(url, plain[i], strlen(plain[i])) == 0)
			return true;
	return false;
}

static bool
tls_conf_complete(const struct tls_conf *conf)
{
	return conf != NULL && conf->tc_ca != NULL && conf->tc_cert != NULL &&
	    conf->tc_key != NULL && conf->tc_ca[0] != '\0' && conf->tc_cert[0] != '\0' &&
	    conf->tc_key[0] != '\0';
}

int
tls_url_check(const struct tls_conf *conf, const char *url, char *err, size_t errlen)
{
	if (tls_url_is_tls(url)) {
		if (tls_conf_complete(conf))
			return 0;
		snprintf(err, errlen,
		    "%s: a TLS address needs --tls-ca, --tls-cert and --tls-key "
		    "(CKPT_TLS_CA, CKPT_TLS_CERT, CKPT_TLS_KEY)",
		    url);
		return -EINVAL;
	}
	if (!tls_url_is_plain_tcp(url) || tls_url_is_loopback(url) ||
	    (conf != NULL && conf->tc_allow_plain))
		return 0;
	snprintf(err, errlen,
	    "%s: plain tcp:// beyond loopback is refused: use tls+tcp:// with --tls-ca, "
	    "--tls-cert and --tls-key, or permit it with --allow-plain (CKPT_ALLOW_PLAIN=1)",
	    url);
	return -EPERM;
}

/* The whole of path, NUL-terminated, into *ret_buf (free() it). */
static int
tls_read_file(const char *what, const char *path, char **ret_buf, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	int rv = 0;

	if (f == NULL) {
		rv = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rv));
		return rv;
	}
	buf = malloc(TLS_PEM_MAX + 1);
	if (buf == NULL) {
		rv = -ENOMEM;
		goto out_close;
	}
	len = fread(buf, 1, TLS_PEM_MAX + 1, f);
	if (ferror(f)) {
		rv = -EIO;
		snprintf(err, errlen, "%s %s: read error", what, path);
	} else if (len > TLS_PEM_MAX) {
		rv = -EFBIG;
		snprintf(err, errlen, "%s %s: larger than %u bytes: not a PEM file", what, path,
		    TLS_PEM_MAX);
	} else if (len == 0) {
		rv = -EINVAL;
		snprintf(err, errlen, "%s %s: empty file", what, path);
	}
	if (rv != 0) {
		free(buf);
		goto out_close;
	}
	buf[len] = '\0';
	*ret_buf = buf;
out_close:
	fclose(f);
	return rv;
}

int
tls_config_new(const struct tls_conf *conf, enum tls_mode mode, nng_tls_config **ret_cfg,
    char *err, size_t errlen)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	nng_tls_config *cfg = NULL;
	int rv;

	if (!tls_conf_complete(conf)) {
		snprintf(err, errlen, "TLS needs --tls-ca, --tls-cert and --tls-key");
		return -EINVAL;
	}
	rv = tls_read_file("--tls-ca", conf->tc_ca, &ca, err, errlen);
	if (rv == 0)
		rv = tls_read_file("--tls-cert", conf->tc_cert, &cert, err, errlen);
	if (rv == 0)
		rv = tls_read_file("--tls-key", conf->tc_key, &key, err, errlen);
	if (rv != 0)
		goto out_free;
	/*
	 * The first nng call of a process starts nng's threads, which inherit
	 * the caller's signal mask. Services check their TLS files before they
	 * block SIGINT and SIGTERM for sigwait(): an nng thread started here
	 * without them blocked would take a SIGTERM and die of it.
	 */
	{
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rv = err_from_nng(nng_tls_config_alloc(&cfg,
		    mode == TLS_SERVER ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT));
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (rv != 0) {
		snprintf(err, errlen, "TLS config: %s", err_str(rv));
		goto out_free;
	}
	rv = err_from_nng(nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED));
	if (rv != 0) {
		snprintf(err, errlen, "TLS config: auth mode: %s", err_str(rv));
		goto out_free_cfg;
	}
	rv = err_from_nng(nng_tls_config_ca_chain(cfg, ca, NULL));
	if (rv != 0) {
		snprintf(err, errlen, "--tls-ca %s: not a PEM certificate (%s)", conf->tc_ca,
		    err_str(rv));
		goto out_free_cfg;
	}
	rv = err_from_nng(nng_tls_config_own_cert(cfg, cert, key, NULL));
	if (rv != 0) {
		snprintf(err, errlen,
		    "--tls-cert %s / --tls-key %s: not a PEM certificate and its unencrypted "
		    "private key (%s)",
		    conf->tc_cert, conf->tc_key, err_str(rv));
		goto out_free_cfg;
	}
	*ret_cfg = cfg;
	cfg = NULL;
out_free_cfg:
	if (cfg != NULL)
		nng_tls_config_free(cfg);
out_free:
	free(ca);
	free(cert);
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return rv;
}

/* PEM file path's first certificate, or NULL. */
static X509 *
tls_x509_load(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

/* The certificates after the first in PEM file path (a chain's intermediates), or NULL. */
static STACK_OF(X509) *
tls_x509_rest(const char *path)
{
	STACK_OF(X509) *rest = sk_X509_new_null();
	FILE *f = fopen(path, "re");
	X509 *x;

	if (f == NULL || rest == NULL) {
		if (f != NULL)
			fclose(f);
		sk_X509_free(rest);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	X509_free(x); /* the certificate itself */
	while (x != NULL && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(rest, x) <= 0) {
			X509_free(x);
			break;
		}
	}
	fclose(f);
	ERR_clear_error();
	return rest;
}

/*
 * What mbedTLS does not say at start (nng_tls_config_own_cert() takes a key
 * that is not the certificate's): the pair, the CA, the dates. libcrypto,
 * which the checkpoint digests link already.
 */
static int
tls_conf_check_pair(const struct tls_conf *conf, char *err, size_t errlen)
{
	X509 *cert = tls_x509_load(conf->tc_cert), *ca = tls_x509_load(conf->tc_ca);
	STACK_OF(X509) *chain = tls_x509_rest(conf->tc_cert); /* a node CA's, say */
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	FILE *f;
	int rv = -EINVAL;

	f = fopen(conf->tc_key, "re");
	if (f != NULL) {
		key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (cert == NULL || ca == NULL || key == NULL) {
		snprintf(err, errlen, "%s: not a PEM %s", cert == NULL ? conf->tc_cert :
		    ca == NULL ? conf->tc_ca : conf->tc_key, key == NULL && cert != NULL &&
		    ca != NULL ? "private key (unencrypted)" : "certificate");
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errlen, "--tls-key %s is not the key of --tls-cert %s", conf->tc_key,
		    conf->tc_cert);
		goto out;
	}
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, store, cert, chain) != 1) {
		rv = -ENOMEM;
		snprintf(err, errlen, "out of memory checking --tls-cert");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		snprintf(err, errlen, "--tls-cert %s: %s (checked against --tls-ca %s)",
		    conf->tc_cert, X509_verify_cert_error_string(e), conf->tc_ca);
		goto out;
	}
	rv = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(ca);
	ERR_clear_error();
	return rv;
}

int
tls_conf_check(const struct tls_conf *conf, char *err, size_t errlen)
{
	nng_tls_config *cfg;
	int given, rv;

	if (conf == NULL)
		return 0;
	given = (conf->tc_ca != NULL && conf->tc_ca[0] != '\0') +
	    (conf->tc_cert != NULL && conf->tc_cert[0] != '\0') +
	    (conf->tc_key != NULL && conf->tc_key[0] != '\0');
	if (given == 0)
		return 0;
	if (given != 3) {
		snprintf(err, errlen, "--tls-ca, --tls-cert and --tls-key go together: %s%s%s missing",
		    conf->tc_ca == NULL || conf->tc_ca[0] == '\0' ? "--tls-ca " : "",
		    conf->tc_cert == NULL || conf->tc_cert[0] == '\0' ? "--tls-cert " : "",
		    conf->tc_key == NULL || conf->tc_key[0] == '\0' ? "--tls-key " : "");
		return -EINVAL;
	}
	rv = tls_config_new(conf, TLS_SERVER, &cfg, err, errlen);
	if (rv == 0)
		nng_tls_config_free(cfg);
	if (rv == 0)
		rv = tls_config_new(conf, TLS_CLIENT, &cfg, err, errlen);
	if (rv == 0)
		nng_tls_config_free(cfg);
	if (rv == 0)
		rv = tls_conf_check_pair(conf, err, errlen);
	return rv;
}

/*
 * The top-level scope of kind ("listener", "dialer") whose "id" is id.
 * Not nng_stat_find_listener() / nng_stat_find_dialer(): in nng 1.5.2 they
 * return the first endpoint of the kind, whatever its id (src/core/stats.c,
 * nng_stat_find_scope() recurses through nng_stat_find(child, name), which
 * drops the id), so a process with two listeners read the wrong one.
 */
static nng_stat *
tls_stat_scope(nng_stat *all, const char *kind, uint32_t id)
{
	for (nng_stat *c = nng_stat_child(all); c != NULL; c = nng_stat_next(c)) {
		nng_stat *i;
		uint64_t v;

		if (nng_stat_type(c) != NNG_STAT_SCOPE || strcmp(nng_stat_name(c), kind) != 0)
			continue;
		i = nng_stat_find(c, "id");
		if (i == NULL || nng_stat_type(i) != NNG_STAT_ID)
			continue;
		/* An int in a union with the uint64_t nng_stat_value() reads: either half. */
		v = nng_stat_value(i);
		if ((uint32_t)v == id || (uint32_t)(v >> 32) == id)
			return c;
	}
	return NULL;
}

/* The "auth" statistic of the endpoint kind#id, or 0. */
static uint64_t
tls_stat_auth(const char *kind, int id)
{
	nng_stat *all, *mine, *auth;
	uint64_t n = 0;

	if (id <= 0 || nng_stats_get(&all) != 0)
		return 0;
	mine = tls_stat_scope(all, kind, (uint32_t)id);
	auth = mine != NULL ? nng_stat_find(mine, "auth") : NULL;
	if (auth != NULL)
		n = nng_stat_value(auth);
	nng_stats_free(all);
	return n;
}

uint64_t
tls_dialer_failures(nng_dialer d)
{
	return tls_stat_auth("dialer", nng_dialer_id(d));
}

uint64_t
tls_listener_failures(nng_listener l)
{
	return tls_stat_auth("listener", nng_listener_id(l));
}

void
tls_watch_init(struct tls_watch *w)
{
	memset(w, 0, sizeof(*w));
	w->tw_since = time(NULL);
}

uint64_t
tls_watch_poll(struct tls_watch *w, nng_listener l, const char *url, uint64_t now_ms, bool flush,
    char *line, size_t len, bool *ret_line)
{
	uint64_t n = tls_listener_failures(l), fresh = 0;
	char when[32];
	struct tm tm;

	*ret_line = false;
	if (n > w->tw_seen) {
		fresh = n - w->tw_seen;
		w->tw_held += fresh;
		w->tw_seen = n;
	}
	if (w->tw_held == 0 ||
	    (!flush && w->tw_last_ms != 0 && now_ms - w->tw_last_ms < TLS_WATCH_LINE_MS))
		return fresh;
	gmtime_r(&w->tw_since, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, len, "tls: %" PRIu64 " handshake%s refused on %s since %s (a client "
	    "without a certificate, with one not signed by --tls-ca, or expired, or no TLS at "
	    "all; nng names no peer; counted in ckpt_tls_refused_total)", w->tw_held,
	    w->tw_held == 1 ? "" : "s", url, when);
	*ret_line = true;
	w->tw_held = 0;
	w->tw_last_ms = now_ms;
	w->tw_since = time(NULL);
	return fresh;
}

int
tls_dialer_setup(const struct tls_conf *conf, nng_dialer d, const char *url, char *err,
    size_t errlen)
{
	nng_tls_config *cfg;
	int rv;

	rv = tls_url_check(conf, url, err, errlen);
	if (rv != 0 || !tls_url_is_tls(url))
		return rv;
	rv = tls_config_new(conf, TLS_CLIENT, &cfg, err, errlen);
	if (rv != 0)
		return rv;
	/* The dialer takes its own hold; ours goes either way. */
	rv = err_from_nng(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg));
	nng_tls_config_free(cfg);
	if (rv != 0)
		snprintf(err, errlen, "%s: cannot set the TLS config: %s", url, err_str(rv));
	return rv;
}

int
tls_listener_setup(const struct tls_conf *conf, nng_listener l, const char *url, char *err,
    size_t errlen)
{
	nng_tls_config *cfg;
	int rv;

	rv = tls_url_check(conf, url, err, errlen);
	if (rv != 0 || !tls_url_is_tls(url))
		return rv;
	rv = tls_config_new(conf, TLS_SERVER, &cfg, err, errlen);
	if (rv != 0)
		return rv;
	rv = err_from_nng(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg));
	nng_tls_config_free(cfg);
	if (rv != 0)
		snprintf(err, errlen, "%s: cannot set the TLS config: %s", url, err_str(rv));
	return rv;
}
