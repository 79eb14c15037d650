#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/v1/manager.pb-c.h"
#include "err.h"
#include "key.h"
#include "sha.h"
#include "util.h"

/* Error messages are one line: anything below ' ' (newlines too) becomes a space. */
static void
ctl_one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int
ctl_fail(struct ctl *c, int rv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->c_err, sizeof(c->c_err), fmt, ap);
	va_end(ap);
	ctl_one_line(c->c_err);
	c->c_usage = false;
	c->c_err_code = 0;
	c->c_err_reason[0] = '\0';
	return rv < 0 ? rv : -EIO;
}

void
ctl_fail_cause(struct ctl *c, const struct rpc_error *err)
{
	c->c_err_code = err->re_code;
	snprintf(c->c_err_reason, sizeof(c->c_err_reason), "%s", err->re_reason);
}

int
ctl_fail_rpc(struct ctl *c, int rv, const struct rpc_error *err)
{
	rv = ctl_fail(c, rv, "%s", err->re_msg[0] != '\0' ? err->re_msg : err_str(rv));
	ctl_fail_cause(c, err);
	return rv;
}

int
ctl_usage(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->c_err, sizeof(c->c_err), fmt, ap);
	va_end(ap);
	ctl_one_line(c->c_err);
	c->c_usage = true;
	return -EINVAL;
}

void
ctl_warn(const char *fmt, ...)
{
	char msg[CTL_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_one_line(msg);
	fflush(stdout);
	fprintf(stderr, "%s: warning: %s\n", CTL_PROG, msg);
}

/* ---- arguments ---- */

static const struct ctl_flag *
ctl_flag_find(const struct ctl_flag *flags, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = flags[i].fl_short, *l = flags[i].fl_long;
		if ((s != NULL && strlen(s) == len && strncmp(s, name, len) == 0) ||
		    (l != NULL && strlen(l) == len && strncmp(l, name, len) == 0))
			return &flags[i];
	}
	return NULL;
}

static int
ctl_flag_set(struct ctl *c, const struct ctl_flag *f, const char *name, const char *val)
{
	const char *cmd = c->c_cmd->cmd_name;
	int64_t i64;
	uint64_t u64;

	switch (f->fl_type) {
	case CTL_FLAG_BOOL:
		*(bool *)f->fl_out = true;
		break;
	case CTL_FLAG_STR:
		*(const char **)f->fl_out = val;
		break;
	case CTL_FLAG_U64:
		if (util_parse_int(val, 0, INT64_MAX, &i64) != 0)
			return ctl_usage(c, "%s: option %s: '%s' is not a number >= 0", cmd, name, val);
		*(uint64_t *)f->fl_out = (uint64_t)i64;
		break;
	case CTL_FLAG_DURATION:
		if (util_parse_duration_ms(val, &u64) != 0)
			return ctl_usage(c, "%s: option %s: '%s' is not a duration (250ms, 3s, 2m, 1h)",
			    cmd, name, val);
		*(uint64_t *)f->fl_out = u64;
		break;
	}
	if (f->fl_seen != NULL)
		*f->fl_seen = true;
	return 0;
}

/* Global options that may also follow the command. */
static int
ctl_global_flag(struct ctl *c, const char *name, size_t len, const char *val, bool *ret_found,
    bool *ret_takes_value)
{
	struct ctl_conf *cf = &c->c_conf;
	uint64_t ms;

	*ret_found = true;
	*ret_takes_value = true;
	if (len == 6 && strncmp(name, "--json", len) == 0) {
		*ret_takes_value = false;
		cf->cf_json = true;
	} else if (len == 9 && strncmp(name, "--timeout", len) == 0) {
		if (val == NULL)
			return 0;
		if (util_parse_duration_ms(val, &ms) != 0 || ms == 0 || ms > 86400000u)
			return ctl_usage(c, "--timeout: invalid value '%s' (1ms to 24h)", val);
		cf->cf_timeout_ms = ms;
	} else if (len == 9 && strncmp(name, "--manager", len) == 0) {
		char *s;
		if (val == NULL)
			return 0;
		if (strstr(val, "://") == NULL && strchr(val, '/') == NULL && strchr(val, ':') != NULL)
			return ctl_usage(c, "--manager: '%s' is not a URL (did you mean tcp://%s?)", val,
			    val);
		if (strstr(val, "://") == NULL)
			return ctl_usage(c, "--manager: '%s' is not a URL (tcp://host:port or "
					    "ipc:///path)",
			    val);
		s = strdup(val);
		if (s == NULL)
			return ctl_fail(c, -ENOMEM, "%s", err_str(-ENOMEM));
		free(cf->cf_manager);
		cf->cf_manager = s;
	} else {
		*ret_found = false;
	}
	return 0;
}

int
ctl_args(struct ctl *c, int argc, char **argv, const struct ctl_flag *flags, size_t nflags,
    char **pos, size_t min_pos, size_t max_pos, size_t *ret_npos)
{
	const char *cmd = c->c_cmd->cmd_name;
	bool opts_done = false;
	size_t npos = 0;
	int rv = 0;

	for (int i = 1; i < argc && rv == 0; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		const struct ctl_flag *f;
		bool global, takes_value;
		size_t len;

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (opts_done || a[0] != '-' || a[1] == '\0') {
			if (npos == max_pos)
				return ctl_usage(c, "%s: unexpected argument '%s'", cmd, a);
			pos[npos++] = argv[i];
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			c->c_help = true;
			return -ECANCELED;
		}
		eq = a[1] == '-' ? strchr(a, '=') : NULL;
		len = eq != NULL ? (size_t)(eq - a) : strlen(a);
		f = ctl_flag_find(flags, nflags, a, len);
		global = false;
		takes_value = f != NULL && f->fl_type != CTL_FLAG_BOOL;
		if (f == NULL) {
			rv = ctl_global_flag(c, a, len, NULL, &global, &takes_value);
			if (rv != 0)
				return rv;
			if (!global)
				return ctl_usage(c, "%s: unknown option '%.*s'", cmd, (int)len, a);
		}
		if (!takes_value) {
			if (eq != NULL)
				return ctl_usage(c, "%s: option %.*s takes no value", cmd, (int)len, a);
		} else if (eq != NULL) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			return ctl_usage(c, "%s: option %s needs a value", cmd, a);
		}
		if (f != NULL) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)len, a);
			rv = ctl_flag_set(c, f, name, val);
		} else {
			rv = ctl_global_flag(c, a, len, val, &global, &takes_value);
		}
	}
	if (rv != 0)
		return rv;
	if (npos < min_pos) {
		const char *want = c->c_cmd->cmd_args;
		return ctl_usage(c, "%s: missing %.*s", cmd, (int)strcspn(want, " "), want);
	}
	*ret_npos = npos;
	return 0;
}

int
ctl_check_name(struct ctl *c, const char *what, const char *name)
{
	if (key_name_check(name) != 0)
		return ctl_usage(c, "bad %s '%s': names are 1 to %d characters of [A-Za-z0-9._-]", what,
		    name, KEY_NAME_MAX);
	return 0;
}

int
ctl_parse_scope(struct ctl *c, const char *arg, char *ret_node, char *ret_component)
{
	const char *slash = strchr(arg, '/');
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1] = "";
	size_t n = slash != NULL ? (size_t)(slash - arg) : strlen(arg);

	/* The node '*' (no name character): every node, alone or before a component. */
	if (strcmp(arg, "*") == 0) {
		ret_node[0] = ret_component[0] = '\0';
		return 0;
	}
	if (strncmp(arg, "*/", 2) == 0) {
		if (strlen(arg + 2) > KEY_NAME_MAX || key_name_check(arg + 2) != 0)
			goto out_bad;
		ret_node[0] = '\0';
		strcpy(ret_component, arg + 2);
		return 0;
	}
	if (n == 0 || n > KEY_NAME_MAX || (slash != NULL && strlen(slash + 1) > KEY_NAME_MAX))
		goto out_bad;
	memcpy(node, arg, n);
	node[n] = '\0';
	if (slash != NULL)
		strcpy(comp, slash + 1);
	if (key_name_check(node) != 0 || (slash != NULL && key_name_check(comp) != 0))
		goto out_bad;
	strcpy(ret_node, node);
	strcpy(ret_component, comp);
	return 0;

out_bad:
	return ctl_usage(c, "bad NODE[/COMPONENT] '%s' (or */COMPONENT): names are 1 to %d "
	    "characters of [A-Za-z0-9._-]", arg, KEY_NAME_MAX);
}

int
ctl_parse_ref(struct ctl *c, const char *arg, char *ret_node, char *ret_component,
    uint64_t *ret_seq)
{
	if (key_parse_ref(arg, ret_node, ret_component, ret_seq) != 0)
		return ctl_usage(c,
		    "bad checkpoint '%s': expected NODE/COMPONENT[@SEQ] (names of 1 to %d characters "
		    "of [A-Za-z0-9._-], SEQ >= 1)",
		    arg, KEY_NAME_MAX);
	return 0;
}

/* ---- connections ---- */

unsigned
ctl_timeout(const struct ctl *c)
{
	return (unsigned)c->c_conf.cf_timeout_ms;
}

unsigned
ctl_timeout_at_least(const struct ctl *c, unsigned floor_ms)
{
	unsigned t = ctl_timeout(c);
	return t > floor_ms ? t : floor_ms;
}

int
ctl_manager(struct ctl *c, struct rpc_client **ret_client)
{
	struct rpc_error err = { 0 };
	const char *url = c->c_conf.cf_manager;
	int rv;

	if (c->c_mgr == NULL) {
		if (url == NULL || url[0] == '\0')
			return ctl_usage(c, "no manager address: give --manager URL or set CKPT_MANAGER");
		rv = rpc_client_open_tls(url, &ckpt__v1__manager__descriptor, RPC_CLIENT_DIAL_NOW, 0,
		    &c->c_conf.cf_tls, &c->c_mgr, &err);
		if (rv != 0)
			return ctl_fail_rpc(c, rv, &err);
		rpc_client_expect_peer(c->c_mgr, "manager"); /* with authentication on */
	}
	*ret_client = c->c_mgr;
	return 0;
}

int
ctl_mgr_call(struct ctl *c, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply)
{
	struct rpc_error err = { 0 };
	struct rpc_client *mgr = NULL;
	int rv;

	rv = ctl_manager(c, &mgr);
	if (rv != 0)
		return rv;
	rv = rpc_client_call(mgr, method, req, timeout_ms, ret_reply, &err);
	if (rv != 0)
		return ctl_fail_rpc(c, rv, &err);
	return 0;
}

static bool
ctl_host_is_wildcard(const char *host, size_t len)
{
	static const char *const wild[] = { "", "*", "0.0.0.0", "[::]", "::" };
	for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++)
		if (strlen(wild[i]) == len && strncmp(host, wild[i], len) == 0)
			return true;
	return false;
}

/* Finds the host of "scheme://host:port" (tcp-like schemes only). */
static bool
ctl_url_host(const char *url, const char **ret_host, size_t *ret_len)
{
	const char *sep = strstr(url, "://"), *host, *colon;

	if (sep == NULL || strstr(url, "tcp") == NULL || strstr(url, "tcp") > sep)
		return false;
	host = sep + 3;
	colon = strrchr(host, ':');
	if (colon == NULL || strchr(host, '/') != NULL)
		return false;
	*ret_host = host;
	*ret_len = (size_t)(colon - host);
	return true;
}

void
ctl_url_dialable(const char *url, const char *base, char *out, size_t outlen)
{
	const char *host, *bhost;
	size_t len, blen;

	if (base != NULL && ctl_url_host(url, &host, &len) && ctl_host_is_wildcard(host, len) &&
	    ctl_url_host(base, &bhost, &blen) && !ctl_host_is_wildcard(bhost, blen)) {
		snprintf(out, outlen, "%.*s%.*s%s", (int)(host - url), url, (int)blen, bhost,
		    host + len);
		return;
	}
	snprintf(out, outlen, "%s", url);
}

int
ctl_nas(struct ctl *c, struct nasc **ret_nasc)
{
	Ckpt__V1__InfoRequest ireq = CKPT__V1__INFO_REQUEST__INIT;
	Ckpt__V1__InfoReply *irep = NULL;
	char urls[NASC_URLS_MAX][LIMIT_URL_MAX];
	char *ptrs[NASC_URLS_MAX];
	struct rpc_error err = { 0 };
	size_t n = 0;
	int rv = 0;

	if (c->c_nas != NULL) {
		*ret_nasc = c->c_nas;
		return 0;
	}
	if (c->c_conf.cf_nas.cl_count > 0) {
		for (size_t i = 0; i < c->c_conf.cf_nas.cl_count && n < NASC_URLS_MAX; i++)
			snprintf(urls[n++], LIMIT_URL_MAX, "%s", c->c_conf.cf_nas.cl_items[i]);
	} else {
		rv = ctl_mgr_call(c, MGR_INFO, &ireq.base, ctl_timeout(c), (ProtobufCMessage **)&irep);
		if (rv != 0)
			return rv;
		for (size_t i = 0; i < irep->n_nas && n < NASC_URLS_MAX; i++) {
			size_t len = strlen(irep->nas[i]);
			if (len == 0 || len >= LIMIT_URL_MAX)
				continue;
			ctl_url_dialable(irep->nas[i], c->c_conf.cf_manager, urls[n++], LIMIT_URL_MAX);
		}
		rpc_reply_free(&irep->base);
		if (n == 0)
			return ctl_fail(c, -ENOENT, "%s: Manager.Info: the manager knows no NAS address",
			    c->c_conf.cf_manager);
	}
	for (size_t i = 0; i < n; i++)
		ptrs[i] = urls[i];
	rv = nasc_open_tls(ptrs, n, RPC_CLIENT_DIAL_NOW, &c->c_conf.cf_tls, &c->c_nas, &err);
	if (rv != 0)
		return ctl_fail_rpc(c, rv, &err);
	rv = nasc_set_chunking(c->c_nas, (uint32_t)c->c_conf.cf_chunk_min,
	    (uint32_t)c->c_conf.cf_chunk_avg, (uint32_t)c->c_conf.cf_chunk_max);
	if (rv != 0)
		return ctl_usage(c, "--chunk-min %" PRIu64 " < --chunk-avg %" PRIu64 " < --chunk-max %"
		    PRIu64 " is required", c->c_conf.cf_chunk_min, c->c_conf.cf_chunk_avg,
		    c->c_conf.cf_chunk_max);
	nasc_set_format3(c->c_nas, c->c_conf.cf_test_format3);
	snprintf(c->c_nas_url, sizeof(c->c_nas_url), "%s", urls[0]);
	*ret_nasc = c->c_nas;
	return 0;
}

int
ctl_nas_call(struct ctl *c, unsigned method, const ProtobufCMessage *req, unsigned timeout_ms,
    ProtobufCMessage **ret_reply)
{
	struct rpc_error err = { 0 };
	struct nasc *nas;
	int rv;

	rv = ctl_nas(c, &nas);
	if (rv != 0)
		return rv;
	rv = nasc_call(nas, method, req, timeout_ms, ret_reply, &err);
	if (rv != 0)
		return ctl_fail_rpc(c, rv, &err);
	return 0;
}

/* ---- output ---- */

const char *
ctl_clean(const char *s, char *buf, size_t buflen)
{
	size_t i = 0;
	if (buflen == 0)
		return "";
	for (; s != NULL && s[i] != '\0' && i + 1 < buflen; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

const char *
ctl_time_iso(uint64_t unix_ms, char *buf, size_t buflen)
{
	time_t sec = (time_t)(unix_ms / 1000u);
	struct tm tm;
	size_t n;

	if (unix_ms == 0 || gmtime_r(&sec, &tm) == NULL) {
		snprintf(buf, buflen, "-");
		return buf;
	}
	n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, buflen - n, ".%03uZ", (unsigned)(unix_ms % 1000u));
	return buf;
}

const char *
ctl_hex(const uint8_t *data, size_t len, char *buf)
{
	buf[0] = '\0';
	if (data != NULL && len == SHA_LEN)
		sha_hex(data, len, buf);
	return buf;
}

int
ctl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

int
ctl_flush_stdout(struct ctl *c)
{
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int rv = errno != 0 ? -errno : -EIO;
		return ctl_fail(c, rv, "writing to stdout: %s", err_str(rv));
	}
	return 0;
}

void
ctl_close(struct ctl *c)
{
	nasc_close(c->c_nas);
	c->c_nas = NULL;
	rpc_client_close(c->c_mgr);
	c->c_mgr = NULL;
}
