/*
 * tls: the transport settings every binary shares (--tls-ca, --tls-cert,
 * --tls-key, --allow-plain) and what they mean for each address it listens
 * on or dials.
 *
 *   tls+tcp://, wss://   need all three files: mutual TLS, each side shows a
 *                        certificate signed by the CA in --tls-ca and checks
 *                        the other's (NNG_TLS_AUTH_MODE_REQUIRED both ways)
 *   tcp://, ws://        plain; allowed to a loopback address (127.0.0.0/8,
 *                        ::1, localhost) always, elsewhere (a name, a LAN
 *                        address, 0.0.0.0) only with --allow-plain
 *   ipc://, inproc://    always allowed (file permissions guard ipc://)
 *
 * A host name other than "localhost" counts as not loopback: it is never
 * resolved to decide, so the refusal happens before any network traffic.
 *
 * nng 1.5.2 takes an nng_tls_config per dialer or listener
 * (NNG_OPT_TLS_CONFIG; it holds its own reference). tls_dialer_setup() and
 * tls_listener_setup() build one from the files each time (certificates
 * replaced on disk count from the next endpoint on) and set it. nng's
 * default client config names the URL's host as the server name; ours sets
 * none, so the server is checked against the CA only, not against the host
 * name it was dialed by: agents are dialed at whatever address their pod got,
 * and the roles in the certificates (ckpt:nas, ckpt:node:ID...) are checked
 * above TLS, by the identity handshake.
 *
 * The struct is owned by each binary's configuration (cfg.h fills it through
 * TLS_CFG_OPTS) and passed by pointer to every place that opens a socket;
 * NULL means no TLS files and no --allow-plain.
 */
#ifndef CKPT_TLS_H
#define CKPT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "cfg.h"

struct tls_conf {
	char *tc_ca;         /* PEM file of the CA certificate(s) */
	char *tc_cert;       /* PEM file of this side's certificate (chain) */
	char *tc_key;        /* PEM file of its private key (unencrypted) */
	bool tc_allow_plain; /* plain tcp:// beyond loopback */
	/*
	 * Optional, for rpc clients opened with these settings: called when a
	 * server fails to prove the identity the client needs (auth.proto,
	 * step 1b): line is the cause, first is true once per connection (log
	 * it then; count every call). From any thread of the client's callers.
	 */
	void (*tc_on_server_refused)(void *arg, const char *line, bool first);
	void *tc_arg;
};

/* The four settings, for a service's cfg table; field is its struct tls_conf. */
#define TLS_CFG_OPTS(type, field)                                                              \
	{ "tls-ca", CFG_STR, offsetof(type, field.tc_ca), NULL, 0, 0, 0, "FILE",                   \
	    "CA certificate (PEM) that peers' certificates must be signed by; with --tls-cert "    \
	    "and --tls-key, needed by every tls+tcp:// address" },                                \
	{ "tls-cert", CFG_STR, offsetof(type, field.tc_cert), NULL, 0, 0, 0, "FILE",               \
	    "this side's certificate (PEM, signed by the CA), shown to every peer" },             \
	{ "tls-key", CFG_STR, offsetof(type, field.tc_key), NULL, 0, 0, 0, "FILE",                 \
	    "private key (PEM, unencrypted) of --tls-cert" },                                     \
	{ "allow-plain", CFG_BOOL, offsetof(type, field.tc_allow_plain), "false", 0, 0, 0, NULL, \
	    "permit plain tcp:// to addresses other than loopback (without it only tls+tcp://, "   \
	    "loopback tcp:// and ipc:// are accepted)" }

enum tls_mode {
	TLS_CLIENT,
	TLS_SERVER,
};

/* Whether url's scheme is one of nng's TLS ones (tls+tcp, tls+tcp4/6, wss, wss4/6). */
bool tls_url_is_tls(const char *url);

/*
 * Whether url's host is loopback: 127.0.0.0/8, ::1 (bracketed or not) or
 * localhost. false for anything else, names and wildcards included.
 */
bool tls_url_is_loopback(const char *url);

/*
 * Whether conf (NULL: none) permits listening on or dialing url: 0, or
 * -EPERM for plain tcp:// beyond loopback without tc_allow_plain, -EINVAL
 * for a TLS address without all three files; the reason in err.
 */
int tls_url_check(const struct tls_conf *conf, const char *url, char *err, size_t errlen);

/*
 * Checks the settings at start: the three files all given or none, each
 * readable, a config of each mode builds from them, the key is the
 * certificate's, the certificate is signed by the CA and valid now (an
 * expired one is refused by every peer: better said once at start). 0, or a
 * negative errno and the reason.
 */
int tls_conf_check(const struct tls_conf *conf, char *err, size_t errlen);

/*
 * A new nng_tls_config of mode from conf's files (mutual authentication
 * required, TLS 1.2 as nng 1.5.2 offers it). The caller owns it
 * (nng_tls_config_free()). -EINVAL when conf lacks a file.
 */
int tls_config_new(const struct tls_conf *conf, enum tls_mode mode, nng_tls_config **ret_cfg,
    char *err, size_t errlen);

/*
 * tls_url_check(), then for a TLS url sets a new config on the endpoint,
 * before it is started. 0 or a negative errno with the reason in err.
 */
int tls_dialer_setup(const struct tls_conf *conf, nng_dialer d, const char *url, char *err,
    size_t errlen);
int tls_listener_setup(const struct tls_conf *conf, nng_listener l, const char *url, char *err,
    size_t errlen);

/*
 * TLS handshakes that failed on the dialer, or the listener, so far: nng's
 * "auth" statistic of the endpoint, bumped when its TLS layer says
 * NNG_EPEERAUTH or NNG_ECRYPTO (the peer's certificate refused: none, of
 * another CA, expired; or ours refused by the peer; or bytes that are no
 * TLS); 0 when nng keeps no statistics. nng 1.5.2 reports a failed
 * handshake nowhere else: no callback, no pipe (src/core/listener.c,
 * nni_listener_bump_error(); src/sp/transport/tls/tls.c,
 * tlstran_pipe_nego_cb() hands the error to the listener's pending
 * accept, so a failure that ends while the listener has none pending,
 * a moment between two accepts, is not counted). Each call snapshots
 * all of nng's statistics (nng_stats_get()): poll it, do not call it per
 * request.
 */
uint64_t tls_dialer_failures(nng_dialer d);
uint64_t tls_listener_failures(nng_listener l);

/*
 * A listener's refused handshakes as counts and log lines, for whoever
 * polls it (an rpc server's "rpc:tls" thread, the manager's monitor for its
 * events listener): tls_watch_poll() every second or so reads
 * tls_listener_failures() and returns how many are new (for a counter,
 * ckpt_tls_refused_total); when refusals are held and the last line is at
 * least TLS_WATCH_LINE_MS old (or flush is set: stopping), it also writes
 * one line into line ("tls: N handshakes refused on URL since TIME (...)")
 * and sets *ret_line. One watch per listener, used by one thread.
 */
#define TLS_WATCH_LINE_MS 5000u
struct tls_watch {
	uint64_t tw_seen;    /* failures read so far */
	uint64_t tw_held;    /* not yet told in a line */
	uint64_t tw_last_ms; /* monotonic ms of the last line; 0: none yet */
	time_t tw_since;     /* wall clock: start of what is held */
};
void tls_watch_init(struct tls_watch *w);
uint64_t tls_watch_poll(struct tls_watch *w, nng_listener l, const char *url, uint64_t now_ms,
    bool flush, char *line, size_t len, bool *ret_line);

#endif
