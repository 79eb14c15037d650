#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const double metrics_latency_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10, 30, 60 };
const size_t metrics_latency_nbuckets =
    sizeof(metrics_latency_buckets) / sizeof(metrics_latency_buckets[0]);

/*
 * A series' values are atomics, updated without any lock once the series is
 * found: a double's bits (added with compare-and-swap: exact under any
 * number of threads), a histogram's counts added with fetch-and-add.
 * (Values on a cache line of their own, apart from the labels look-ups
 * read, measured no faster in bench_metrics and doubled a series' size.)
 */
struct metrics_series {
	char *ms_vals[METRICS_LABELS_MAX];
	_Atomic uint64_t ms_value;      /* bits of a double: counter, gauge; a histogram's sum */
	_Atomic uint64_t ms_count;      /* histogram: observations */
	_Atomic uint64_t *ms_buckets;   /* histogram: per bucket, not cumulative (+Inf is ms_count) */
};

struct metrics_fam {
	struct metrics *mf_reg;
	enum metrics_type mf_type;
	char mf_name[METRICS_NAME_MAX + 1];
	char *mf_help;
	char mf_labels[METRICS_LABELS_MAX][METRICS_NAME_MAX + 1];
	size_t mf_nlabels;
	double mf_bounds[METRICS_BUCKETS_MAX];
	size_t mf_nbounds;
	/*
	 * Read-locked by look-ups (an update finds its series, then adds to
	 * it with atomics) and by metrics_render(); write-locked only to add
	 * a series and by metrics_clear(). Updates of different threads do
	 * not wait for each other, and a family's look-ups do not wait for
	 * another family's.
	 */
	pthread_rwlock_t mf_rw;
	/* A family without labels: its one series, updated with no lock at all. */
	struct metrics_series *mf_one;
	/* Series by the order they appeared, each its own allocation (stays put). */
	struct metrics_series **mf_series;
	size_t mf_nseries, mf_cap;
	_Atomic size_t mf_series_max; /* METRICS_SERIES_MAX, or metrics_set_series_max() */
	_Atomic uint64_t mf_dropped; /* updates of series not kept: the family was full */
	atomic_bool mf_warned;       /* m_on_full was called for this family */
	/*
	 * The series by their label values (metrics_series_hash()): open
	 * addressing, mf_index_cap slots (a power of two, at least twice
	 * mf_nseries), each 0 (free) or a series' index + 1. Without it every
	 * update compared its values with every series': one per component
	 * (the NAS's stored_total) made a store pay for thousands of compares,
	 * under the registry's lock.
	 */
	uint32_t *mf_index;
	size_t mf_index_cap;
};

struct metrics_collector {
	metrics_collect_fn mc_fn;
	void *mc_arg;
};

struct metrics {
	pthread_mutex_t m_mu; /* guards the families' list, collectors and m_on_full */
	struct metrics_fam *m_fams[METRICS_FAMILIES_MAX];
	size_t m_nfams;
	struct metrics_collector m_coll[METRICS_COLLECTORS_MAX];
	size_t m_ncoll;
	metrics_full_fn m_on_full;
	void *m_on_full_arg;
};

/* A growing text buffer; mb_err sticks at the first failure. */
struct metrics_buf {
	char *mb_p;
	size_t mb_len, mb_cap;
	int mb_err;
};

/*
 * A family's lock prefers writers: glibc's default lets readers that keep
 * overlapping (updates from many threads) hold off a writer for as long as
 * they come, and the writer is a Store whose component is new.
 */
static int
metrics_rwlock_init(pthread_rwlock_t *rw)
{
	pthread_rwlockattr_t attr;
	int rv;

	if (pthread_rwlockattr_init(&attr) != 0)
		return -ENOMEM;
#ifdef __GLIBC__ /* an enum, not a macro; nothing takes a family's read lock twice */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	rv = pthread_rwlock_init(rw, &attr) != 0 ? -ENOMEM : 0;
	pthread_rwlockattr_destroy(&attr);
	return rv;
}

int
metrics_new(struct metrics **ret_metrics)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int rv;

	if (m == NULL)
		return -ENOMEM;
	rv = -pthread_mutex_init(&m->m_mu, NULL);
	if (rv != 0) {
		free(m);
		return rv;
	}
	*ret_metrics = m;
	return 0;
}

/* Accepts NULL. */
static void
metrics_series_free(struct metrics_series *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < METRICS_LABELS_MAX; i++)
		free(s->ms_vals[i]);
	free((void *)s->ms_buckets);
	free(s);
}

static void
metrics_fam_free(struct metrics_fam *f)
{
	for (size_t i = 0; i < f->mf_nseries; i++)
		metrics_series_free(f->mf_series[i]);
	free(f->mf_series);
	free(f->mf_index);
	free(f->mf_help);
	pthread_rwlock_destroy(&f->mf_rw);
	free(f);
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->m_nfams; i++)
		metrics_fam_free(m->m_fams[i]);
	pthread_mutex_destroy(&m->m_mu);
	free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (label names: no ':'), at most METRICS_NAME_MAX bytes. */
static bool
metrics_name_ok(const char *s, size_t len, bool label)
{
	if (len == 0 || len > METRICS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (c == ':' && !label) || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* Splits "a,b,c" into f's label names. */
static int
metrics_parse_labels(struct metrics_fam *f, const char *labels)
{
	const char *p = labels;

	f->mf_nlabels = 0;
	if (labels == NULL || labels[0] == '\0')
		return 0;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (f->mf_nlabels == METRICS_LABELS_MAX || !metrics_name_ok(p, len, true))
			return -EINVAL;
		if (f->mf_type == METRICS_HISTOGRAM && len == 2 && memcmp(p, "le", 2) == 0)
			return -EINVAL;
		memcpy(f->mf_labels[f->mf_nlabels], p, len);
		f->mf_labels[f->mf_nlabels][len] = '\0';
		f->mf_nlabels++;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

static struct metrics_series *metrics_series_add(struct metrics_fam *f, const char *const *vals,
    int *ret_rv);

static bool
metrics_same_shape(const struct metrics_fam *a, const struct metrics_fam *b)
{
	if (a->mf_type != b->mf_type || a->mf_nlabels != b->mf_nlabels)
		return false;
	for (size_t i = 0; i < a->mf_nlabels; i++)
		if (strcmp(a->mf_labels[i], b->mf_labels[i]) != 0)
			return false;
	return true;
}

int
metrics_add_family(struct metrics *m, enum metrics_type type, const char *name,
    const char *help, const char *labels, const double *buckets, size_t nbuckets,
    struct metrics_fam **ret_fam)
{
	struct metrics_fam *f, *old = NULL;
	int rv;

	if (name == NULL || !metrics_name_ok(name, strlen(name), false) ||
	    (type == METRICS_HISTOGRAM && (nbuckets == 0 || nbuckets > METRICS_BUCKETS_MAX)))
		return -EINVAL;
	for (size_t i = 1; type == METRICS_HISTOGRAM && i < nbuckets; i++)
		if (!(buckets[i] > buckets[i - 1]))
			return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	if (metrics_rwlock_init(&f->mf_rw) != 0) {
		free(f);
		return -ENOMEM;
	}
	f->mf_reg = m;
	f->mf_type = type;
	atomic_init(&f->mf_series_max, METRICS_SERIES_MAX);
	snprintf(f->mf_name, sizeof(f->mf_name), "%s", name);
	rv = metrics_parse_labels(f, labels);
	if (rv != 0)
		goto out_free;
	if (type == METRICS_HISTOGRAM) {
		memcpy(f->mf_bounds, buckets, nbuckets * sizeof(*buckets));
		f->mf_nbounds = nbuckets;
	}
	f->mf_help = strdup(help != NULL ? help : "");
	if (f->mf_help == NULL) {
		rv = -ENOMEM;
		goto out_free;
	}
	pthread_mutex_lock(&m->m_mu);
	for (size_t i = 0; i < m->m_nfams; i++)
		if (strcmp(m->m_fams[i]->mf_name, name) == 0)
			old = m->m_fams[i];
	if (old != NULL)
		rv = metrics_same_shape(old, f) ? 0 : -EEXIST;
	else if (m->m_nfams == METRICS_FAMILIES_MAX)
		rv = -ENOSPC;
	else if (f->mf_nlabels == 0 && (f->mf_one = metrics_series_add(f, NULL, &rv)) == NULL)
		; /* rv set: a family without labels has its one series from the start, at 0 */
	else
		m->m_fams[m->m_nfams++] = f;
	pthread_mutex_unlock(&m->m_mu);
	if (rv != 0 || old != NULL)
		goto out_free;
	*ret_fam = f;
	return 0;

out_free:
	if (rv == 0)
		*ret_fam = old;
	metrics_fam_free(f);
	return rv;
}

/* FNV-1a over label values as stored: each cut at METRICS_VALUE_MAX bytes, NULL as "". */
static uint32_t
metrics_series_hash(const struct metrics_fam *f, const char *const *vals)
{
	static const uint8_t end = 0xff; /* ends a value: ("ab","") is not ("a","b") */
	uint32_t h = UTIL_FNV1A_INIT;

	for (size_t j = 0; j < f->mf_nlabels; j++) {
		const char *v = vals[j] != NULL ? vals[j] : "";
		h = util_fnv1a(h, v, strnlen(v, METRICS_VALUE_MAX));
		h = util_fnv1a(h, &end, 1);
	}
	return h;
}

static bool
metrics_series_is(const struct metrics_fam *f, const struct metrics_series *s,
    const char *const *vals)
{
	for (size_t j = 0; j < f->mf_nlabels; j++)
		if (strncmp(s->ms_vals[j], vals[j] != NULL ? vals[j] : "", METRICS_VALUE_MAX) != 0)
			return false;
	return true;
}

/* Puts series i into f's index, which has a free slot. */
static void
metrics_index_put(struct metrics_fam *f, size_t i)
{
	size_t mask = f->mf_index_cap - 1;
	size_t at = metrics_series_hash(f, (const char *const *)f->mf_series[i]->ms_vals) & mask;

	while (f->mf_index[at] != 0)
		at = (at + 1) & mask;
	f->mf_index[at] = (uint32_t)i + 1;
}

/* Makes f's index hold twice its series and one more; -ENOMEM leaves it as it was. */
static int
metrics_index_grow(struct metrics_fam *f)
{
	size_t cap = f->mf_index_cap == 0 ? 16 : f->mf_index_cap;
	uint32_t *idx;

	while (cap < 2 * (f->mf_nseries + 1))
		cap *= 2;
	if (cap == f->mf_index_cap)
		return 0;
	idx = calloc(cap, sizeof(*idx));
	if (idx == NULL)
		return -ENOMEM;
	free(f->mf_index);
	f->mf_index = idx;
	f->mf_index_cap = cap;
	for (size_t i = 0; i < f->mf_nseries; i++)
		metrics_index_put(f, i);
	return 0;
}

/* The series of f with vals, or NULL. Under mf_rw (read or write). */
static struct metrics_series *
metrics_series_find(const struct metrics_fam *f, const char *const *vals)
{
	size_t mask = f->mf_index_cap - 1;

	if (f->mf_index_cap == 0)
		return NULL;
	for (size_t at = metrics_series_hash(f, vals) & mask; f->mf_index[at] != 0;
	    at = (at + 1) & mask) {
		struct metrics_series *s = f->mf_series[f->mf_index[at] - 1];
		if (metrics_series_is(f, s, vals))
			return s;
	}
	return NULL;
}

/* A new series of f with vals, at 0, not yet in f; NULL with *ret_rv set (-ENOMEM). */
static struct metrics_series *
metrics_series_make(struct metrics_fam *f, const char *const *vals, int *ret_rv)
{
	struct metrics_series *s = calloc(1, sizeof(*s));

	*ret_rv = -ENOMEM;
	if (s == NULL)
		return NULL;
	for (size_t j = 0; j < f->mf_nlabels; j++)
		if ((s->ms_vals[j] = strndup(vals[j] != NULL ? vals[j] : "", METRICS_VALUE_MAX)) == NULL)
			goto out_free;
	if (f->mf_type == METRICS_HISTOGRAM &&
	    (s->ms_buckets = calloc(f->mf_nbounds, sizeof(*s->ms_buckets))) == NULL)
		goto out_free;
	*ret_rv = 0;
	return s;

out_free:
	metrics_series_free(s);
	return NULL;
}

/*
 * Adds a series of f with vals unless another thread did first; NULL with
 * *ret_rv set, -ENOSPC when f already has its maximum of series. Under mf_rw
 * for writing.
 */
static struct metrics_series *
metrics_series_add(struct metrics_fam *f, const char *const *vals, int *ret_rv)
{
	struct metrics_series *s = metrics_series_find(f, vals);

	*ret_rv = 0;
	if (s != NULL)
		return s;
	if (f->mf_nseries >= atomic_load(&f->mf_series_max)) {
		*ret_rv = -ENOSPC;
		return NULL;
	}
	if ((*ret_rv = metrics_index_grow(f)) != 0)
		return NULL;
	if (f->mf_nseries == f->mf_cap) {
		size_t cap = f->mf_cap == 0 ? 8 : 2 * f->mf_cap;
		struct metrics_series **n = realloc(f->mf_series, cap * sizeof(*n));

		if (n == NULL) {
			*ret_rv = -ENOMEM;
			return NULL;
		}
		f->mf_series = n;
		f->mf_cap = cap;
	}
	if ((s = metrics_series_make(f, vals, ret_rv)) == NULL)
		return NULL;
	f->mf_series[f->mf_nseries] = s;
	metrics_index_put(f, f->mf_nseries);
	f->mf_nseries++;
	return s;
}

/* Counts an update f had no room for; tells the registry's m_on_full the first time. */
static void
metrics_dropped(struct metrics_fam *f)
{
	struct metrics *m = f->mf_reg;
	metrics_full_fn fn;
	void *arg;

	atomic_fetch_add(&f->mf_dropped, 1);
	if (atomic_exchange(&f->mf_warned, true))
		return;
	pthread_mutex_lock(&m->m_mu);
	fn = m->m_on_full;
	arg = m->m_on_full_arg;
	pthread_mutex_unlock(&m->m_mu);
	if (fn != NULL)
		fn(arg, f->mf_name, atomic_load(&f->mf_series_max));
}

static double
metrics_bits_double(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static uint64_t
metrics_double_bits(double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof(bits));
	return bits;
}

/* *p += v, p the bits of a double; exact under concurrent adds. */
static void
metrics_add_double(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

	while (!atomic_compare_exchange_weak(p, &old,
	    metrics_double_bits(metrics_bits_double(old) + v)))
		;
}

enum metrics_op { METRICS_OP_INC, METRICS_OP_SET, METRICS_OP_OBSERVE };

/* The update itself: atomics only, no lock. */
static void
metrics_series_apply(const struct metrics_fam *f, struct metrics_series *s, enum metrics_op op,
    double v)
{
	switch (op) {
	case METRICS_OP_INC:
		metrics_add_double(&s->ms_value, v);
		break;
	case METRICS_OP_SET:
		atomic_store(&s->ms_value, metrics_double_bits(v));
		break;
	case METRICS_OP_OBSERVE:
		/* the count first: a render that sees the bucket sees the count (+Inf >= every bucket) */
		atomic_fetch_add(&s->ms_count, 1);
		for (size_t i = 0; i < f->mf_nbounds; i++) {
			if (v <= f->mf_bounds[i]) {
				atomic_fetch_add(&s->ms_buckets[i], 1);
				break;
			}
		}
		metrics_add_double(&s->ms_value, v);
		break;
	}
}

static int
metrics_update(struct metrics_fam *f, enum metrics_op op, double v, const char *const *vals,
    size_t nvals)
{
	struct metrics_series *s;
	int rv = 0;

	if (f == NULL)
		return 0;
	if (nvals != f->mf_nlabels || (op == METRICS_OP_OBSERVE) != (f->mf_type == METRICS_HISTOGRAM) ||
	    (op == METRICS_OP_INC && f->mf_type == METRICS_COUNTER && !(v >= 0)))
		return -EINVAL;
	if (f->mf_one != NULL) {
		metrics_series_apply(f, f->mf_one, op, v);
		return 0;
	}
	pthread_rwlock_rdlock(&f->mf_rw);
	s = metrics_series_find(f, vals);
	if (s != NULL)
		metrics_series_apply(f, s, op, v);
	else if (f->mf_nseries >= atomic_load(&f->mf_series_max))
		rv = -ENOSPC; /* full: dropped without the write lock, which would stop every update */
	pthread_rwlock_unlock(&f->mf_rw);
	if (s != NULL || rv != 0) {
		if (rv == -ENOSPC)
			metrics_dropped(f);
		return rv;
	}
	pthread_rwlock_wrlock(&f->mf_rw);
	s = metrics_series_add(f, vals, &rv);
	if (s != NULL)
		metrics_series_apply(f, s, op, v);
	pthread_rwlock_unlock(&f->mf_rw);
	if (rv == -ENOSPC)
		metrics_dropped(f);
	return rv;
}

int
metrics_inc(struct metrics_fam *f, double v, const char *const *vals, size_t nvals)
{
	return metrics_update(f, METRICS_OP_INC, v, vals, nvals);
}

int
metrics_set(struct metrics_fam *f, double v, const char *const *vals, size_t nvals)
{
	return metrics_update(f, METRICS_OP_SET, v, vals, nvals);
}

int
metrics_observe(struct metrics_fam *f, double v, const char *const *vals, size_t nvals)
{
	return metrics_update(f, METRICS_OP_OBSERVE, v, vals, nvals);
}

void
metrics_clear(struct metrics_fam *f)
{
	if (f == NULL)
		return;
	if (f->mf_one != NULL) {
		/* its one series stays (at 0): updates reach it without a lock */
		struct metrics_series *s = f->mf_one;

		atomic_store(&s->ms_value, metrics_double_bits(0));
		atomic_store(&s->ms_count, 0);
		for (size_t i = 0; i < f->mf_nbounds; i++)
			atomic_store(&s->ms_buckets[i], 0);
		return;
	}
	pthread_rwlock_wrlock(&f->mf_rw);
	for (size_t i = 0; i < f->mf_nseries; i++)
		metrics_series_free(f->mf_series[i]);
	f->mf_nseries = 0;
	if (f->mf_index != NULL)
		memset(f->mf_index, 0, f->mf_index_cap * sizeof(*f->mf_index));
	pthread_rwlock_unlock(&f->mf_rw);
}

void
metrics_on_full(struct metrics *m, metrics_full_fn fn, void *arg)
{
	pthread_mutex_lock(&m->m_mu);
	m->m_on_full = fn;
	m->m_on_full_arg = arg;
	pthread_mutex_unlock(&m->m_mu);
}

int
metrics_set_series_max(struct metrics_fam *f, size_t max)
{
	if (max == 0 || max > METRICS_SERIES_LIMIT)
		return -EINVAL;
	if (f != NULL)
		atomic_store(&f->mf_series_max, max);
	return 0;
}

int
metrics_add_collector(struct metrics *m, metrics_collect_fn fn, void *arg)
{
	int rv = 0;

	pthread_mutex_lock(&m->m_mu);
	if (m->m_ncoll == METRICS_COLLECTORS_MAX)
		rv = -ENOSPC;
	else
		m->m_coll[m->m_ncoll++] = (struct metrics_collector){ fn, arg };
	pthread_mutex_unlock(&m->m_mu);
	return rv;
}

static void
metrics_buf_put(struct metrics_buf *b, const char *s, size_t len)
{
	if (b->mb_err != 0)
		return;
	if (b->mb_len + len + 1 > b->mb_cap) {
		size_t cap = b->mb_cap == 0 ? 4096 : b->mb_cap;
		char *p;

		while (b->mb_len + len + 1 > cap)
			cap *= 2;
		p = realloc(b->mb_p, cap);
		if (p == NULL) {
			b->mb_err = -ENOMEM;
			return;
		}
		b->mb_p = p;
		b->mb_cap = cap;
	}
	memcpy(b->mb_p + b->mb_len, s, len);
	b->mb_len += len;
	b->mb_p[b->mb_len] = '\0';
}

static void
metrics_buf_str(struct metrics_buf *b, const char *s)
{
	metrics_buf_put(b, s, strlen(s));
}

/*
 * s escaped as the format wants: backslash and newline always, the double
 * quote too inside a label value (not in HELP text).
 */
static void
metrics_buf_escaped(struct metrics_buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" :
		    (*s == '"' && quote) ? "\\\"" : NULL;
		if (esc == NULL)
			continue;
		metrics_buf_put(b, run, (size_t)(s - run));
		metrics_buf_str(b, esc);
		run = s + 1;
	}
	metrics_buf_put(b, run, (size_t)(s - run));
}

/* A value as Go's ParseFloat reads it back: shortest exact form, NaN, +Inf, -Inf. */
static void
metrics_fmt_value(double v, char out[32])
{
	if (isnan(v)) {
		strcpy(out, "NaN");
	} else if (isinf(v)) {
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, 32, "%.0f", v);
	} else {
		snprintf(out, 32, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, 32, "%.17g", v);
	}
}

/* name{labels[,le="bound"]} value\n */
static void
metrics_render_line(struct metrics_buf *b, const struct metrics_fam *f, const char *suffix,
    const struct metrics_series *s, const char *le, double v)
{
	char num[32];
	bool any = f->mf_nlabels > 0 || le != NULL;

	metrics_buf_str(b, f->mf_name);
	metrics_buf_str(b, suffix);
	if (any)
		metrics_buf_str(b, "{");
	for (size_t i = 0; i < f->mf_nlabels; i++) {
		if (i > 0)
			metrics_buf_str(b, ",");
		metrics_buf_str(b, f->mf_labels[i]);
		metrics_buf_str(b, "=\"");
		metrics_buf_escaped(b, s->ms_vals[i], true);
		metrics_buf_str(b, "\"");
	}
	if (le != NULL) {
		metrics_buf_str(b, f->mf_nlabels > 0 ? ",le=\"" : "le=\"");
		metrics_buf_str(b, le);
		metrics_buf_str(b, "\"");
	}
	if (any)
		metrics_buf_str(b, "}");
	metrics_fmt_value(v, num);
	metrics_buf_str(b, " ");
	metrics_buf_str(b, num);
	metrics_buf_str(b, "\n");
}

static void
metrics_render_head(struct metrics_buf *b, const char *name, const char *help, const char *type)
{
	metrics_buf_str(b, "# HELP ");
	metrics_buf_str(b, name);
	metrics_buf_str(b, " ");
	metrics_buf_escaped(b, help, false);
	metrics_buf_str(b, "\n# TYPE ");
	metrics_buf_str(b, name);
	metrics_buf_str(b, " ");
	metrics_buf_str(b, type);
	metrics_buf_str(b, "\n");
}

/* f's lines; its series read-locked (their values are read as they are, atomically each). */
static void
metrics_render_fam(struct metrics_buf *b, struct metrics_fam *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	metrics_render_head(b, f->mf_name, f->mf_help, types[f->mf_type]);
	pthread_rwlock_rdlock(&f->mf_rw);
	for (size_t i = 0; i < f->mf_nseries; i++) {
		struct metrics_series *s = f->mf_series[i];
		uint64_t cum = 0;
		char le[32];

		if (f->mf_type != METRICS_HISTOGRAM) {
			metrics_render_line(b, f, "", s, NULL, metrics_bits_double(atomic_load(&s->ms_value)));
			continue;
		}
		for (size_t j = 0; j < f->mf_nbounds; j++) {
			cum += atomic_load(&s->ms_buckets[j]);
			metrics_fmt_value(f->mf_bounds[j], le);
			metrics_render_line(b, f, "_bucket", s, le, (double)cum);
		}
		/* read after the buckets: an observation counts here before in its bucket */
		uint64_t count = atomic_load(&s->ms_count);
		metrics_render_line(b, f, "_bucket", s, "+Inf", (double)count);
		metrics_render_line(b, f, "_sum", s, NULL, metrics_bits_double(atomic_load(&s->ms_value)));
		metrics_render_line(b, f, "_count", s, NULL, (double)count);
	}
	pthread_rwlock_unlock(&f->mf_rw);
}

/*
 * ckpt_metrics_series_dropped_total{family}: updates of series a full family
 * did not keep, one line per family that dropped any; nothing while none did.
 */
static void
metrics_render_dropped(struct metrics_buf *b, struct metrics *m)
{
	bool any = false;

	for (size_t i = 0; i < m->m_nfams; i++) {
		uint64_t n = atomic_load(&m->m_fams[i]->mf_dropped);
		char num[32];

		if (n == 0)
			continue;
		if (!any)
			metrics_render_head(b, METRICS_DROPPED_NAME,
			    "Updates of series not kept: their family already had its maximum of series",
			    "counter");
		any = true;
		metrics_buf_str(b, METRICS_DROPPED_NAME "{family=\"");
		metrics_buf_str(b, m->m_fams[i]->mf_name);
		metrics_fmt_value((double)n, num);
		metrics_buf_str(b, "\"} ");
		metrics_buf_str(b, num);
		metrics_buf_str(b, "\n");
	}
}

int
metrics_render(struct metrics *m, char **ret_text, size_t *ret_len)
{
	struct metrics_collector coll[METRICS_COLLECTORS_MAX];
	struct metrics_buf b = { 0 };
	size_t ncoll;

	pthread_mutex_lock(&m->m_mu);
	ncoll = m->m_ncoll;
	memcpy(coll, m->m_coll, ncoll * sizeof(coll[0]));
	pthread_mutex_unlock(&m->m_mu);
	for (size_t i = 0; i < ncoll; i++)
		coll[i].mc_fn(coll[i].mc_arg, m);

	pthread_mutex_lock(&m->m_mu);
	metrics_buf_put(&b, "", 0); /* "" for a registry without families */
	for (size_t i = 0; i < m->m_nfams; i++)
		metrics_render_fam(&b, m->m_fams[i]);
	metrics_render_dropped(&b, m);
	pthread_mutex_unlock(&m->m_mu);
	if (b.mb_err != 0) {
		free(b.mb_p);
		return b.mb_err;
	}
	*ret_text = b.mb_p;
	*ret_len = b.mb_len;
	return 0;
}
