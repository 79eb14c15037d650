/* metrics: families, series, the exact text rendered, limits, threads, the RPC layer's counts. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/v1/nas.pb-c.h"
#include "ckpt/v1/rpc.pb-c.h"
#include "metrics.h"
#include "rpc.h"
#include "../testrun.h"

static char *
render(struct metrics *m)
{
	char *text;
	size_t len;

	ck_assert_int_eq(metrics_render(m, &text, &len), 0);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

START_TEST(metrics_renders_the_exposition_format)
{
	static const double b[] = { 0.1, 1, 2.5 };
	struct metrics_fam *c, *g, *h;
	struct metrics *m;
	char *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "ckpt_x_total", "Things done",
	    "service,code", NULL, 0, &c), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_GAUGE, "ckpt_y_bytes", "Bytes held", NULL,
	    NULL, 0, &g), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "ckpt_z_seconds", "Durations",
	    "kind", b, 3, &h), 0);
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L("Nas", "OK")), 0);
	ck_assert_int_eq(metrics_inc(c, 2, METRICS_L("Nas", "OK")), 0);
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L("Nas", "NOT_FOUND")), 0);
	ck_assert_int_eq(metrics_set(g, 68719476736.0, NULL, 0), 0);
	ck_assert_int_eq(metrics_observe(h, 0.05, METRICS_L("drain")), 0);
	ck_assert_int_eq(metrics_observe(h, 0.1, METRICS_L("drain")), 0);
	ck_assert_int_eq(metrics_observe(h, 2, METRICS_L("drain")), 0);
	ck_assert_int_eq(metrics_observe(h, 7.25, METRICS_L("drain")), 0);
	text = render(m);
	ck_assert_str_eq(text,
	    "# HELP ckpt_x_total Things done\n"
	    "# TYPE ckpt_x_total counter\n"
	    "ckpt_x_total{service=\"Nas\",code=\"OK\"} 3\n"
	    "ckpt_x_total{service=\"Nas\",code=\"NOT_FOUND\"} 1\n"
	    "# HELP ckpt_y_bytes Bytes held\n"
	    "# TYPE ckpt_y_bytes gauge\n"
	    "ckpt_y_bytes 68719476736\n"
	    "# HELP ckpt_z_seconds Durations\n"
	    "# TYPE ckpt_z_seconds histogram\n"
	    "ckpt_z_seconds_bucket{kind=\"drain\",le=\"0.1\"} 2\n"
	    "ckpt_z_seconds_bucket{kind=\"drain\",le=\"1\"} 2\n"
	    "ckpt_z_seconds_bucket{kind=\"drain\",le=\"2.5\"} 3\n"
	    "ckpt_z_seconds_bucket{kind=\"drain\",le=\"+Inf\"} 4\n"
	    "ckpt_z_seconds_sum{kind=\"drain\"} 9.4\n"
	    "ckpt_z_seconds_count{kind=\"drain\"} 4\n");
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(metrics_escapes_label_values_and_help)
{
	struct metrics_fam *g;
	struct metrics *m;
	char *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_GAUGE, "g", "a \\ back\nslash \"q\"", "v",
	    NULL, 0, &g), 0);
	ck_assert_int_eq(metrics_set(g, 0.5, METRICS_L("a\"b\\c\nd")), 0);
	ck_assert_int_eq(metrics_set(g, -1e-7, METRICS_L("")), 0);
	text = render(m);
	ck_assert_str_eq(text,
	    "# HELP g a \\\\ back\\nslash \"q\"\n"
	    "# TYPE g gauge\n"
	    "g{v=\"a\\\"b\\\\c\\nd\"} 0.5\n"
	    "g{v=\"\"} -1e-07\n");
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(metrics_starts_label_less_series_at_zero)
{
	struct metrics_fam *c, *h;
	struct metrics *m;
	char *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "c_total", "", NULL, NULL, 0, &c), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "h_seconds", "", "", (double[]){ 1 },
	    1, &h), 0);
	text = render(m);
	ck_assert_str_eq(text,
	    "# HELP c_total \n# TYPE c_total counter\nc_total 0\n"
	    "# HELP h_seconds \n# TYPE h_seconds histogram\n"
	    "h_seconds_bucket{le=\"1\"} 0\nh_seconds_bucket{le=\"+Inf\"} 0\n"
	    "h_seconds_sum 0\nh_seconds_count 0\n");
	free(text);
	metrics_free(m);
}
END_TEST

static const struct {
	enum metrics_type type;
	const char *name, *labels;
	size_t nbuckets;
	int rv;
} family_cases[] = {
	{ METRICS_COUNTER, "ckpt_ok_total", "a,b_c,D9", 0, 0 },
	{ METRICS_GAUGE, "ns:sub_name", NULL, 0, 0 },
	{ METRICS_GAUGE, "", NULL, 0, -EINVAL },
	{ METRICS_GAUGE, "9starts_with_digit", NULL, 0, -EINVAL },
	{ METRICS_GAUGE, "has-dash", NULL, 0, -EINVAL },
	{ METRICS_GAUGE, "has space", NULL, 0, -EINVAL },
	{ METRICS_GAUGE, "g", "colon:label", 0, -EINVAL },
	{ METRICS_GAUGE, "g", "a,,b", 0, -EINVAL },
	{ METRICS_GAUGE, "g", "a,", 0, -EINVAL },
	{ METRICS_GAUGE, "g", "a,b,c,d,e", 0, -EINVAL },   /* over METRICS_LABELS_MAX */
	{ METRICS_HISTOGRAM, "h", "le", 1, -EINVAL },      /* reserved for buckets */
	{ METRICS_HISTOGRAM, "h", NULL, 0, -EINVAL },      /* no bucket */
	{ METRICS_HISTOGRAM, "h", NULL, METRICS_BUCKETS_MAX + 1, -EINVAL },
	{ METRICS_GAUGE, "a_name_longer_than_ninety_six_bytes_is_refused_because_nobody_needs_one_"
	                 "that_long_xxxxxxxxxxxxxxx", NULL, 0, -EINVAL }, /* 97 bytes */
};

START_TEST(metrics_checks_names_and_labels)
{
	double b[METRICS_BUCKETS_MAX + 1];
	struct metrics_fam *f = NULL;
	struct metrics *m;

	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		b[i] = (double)i;
	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, family_cases[_i].type, family_cases[_i].name, "help",
	    family_cases[_i].labels, b, family_cases[_i].nbuckets, &f), family_cases[_i].rv);
	metrics_free(m);
}
END_TEST

START_TEST(metrics_refuses_bad_updates)
{
	struct metrics_fam *c, *c2, *h;
	struct metrics *m;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "c_total", "", "a", NULL, 0, &c), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "c_total", "", "a", NULL, 0, &c2), 0);
	ck_assert_ptr_eq(c, c2); /* the same family again */
	ck_assert_int_eq(metrics_add_family(m, METRICS_GAUGE, "c_total", "", "a", NULL, 0, &c2),
	    -EEXIST);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "c_total", "", "b", NULL, 0, &c2),
	    -EEXIST);
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "h", "", NULL, (double[]){ 2, 1 },
	    2, &h), -EINVAL); /* bounds must increase */
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "h", "", NULL, (double[]){ 1, 2 },
	    2, &h), 0);
	ck_assert_int_eq(metrics_inc(c, 1, NULL, 0), -EINVAL);           /* label count */
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L("x", "y")), -EINVAL);
	ck_assert_int_eq(metrics_inc(c, -1, METRICS_L("x")), -EINVAL);  /* a counter goes up */
	ck_assert_int_eq(metrics_observe(c, 1, METRICS_L("x")), -EINVAL);
	ck_assert_int_eq(metrics_inc(h, 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(metrics_set(c, 5, METRICS_L("x")), 0); /* a counter read from elsewhere */
	ck_assert_int_eq(metrics_inc(NULL, 1, NULL, 0), 0);     /* no metrics: nothing */
	metrics_free(m);
}
END_TEST

START_TEST(metrics_bounds_series_per_family)
{
	struct metrics_fam *g;
	struct metrics *m;
	char v[16], *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_GAUGE, "g", "", "c", NULL, 0, &g), 0);
	for (int i = 0; i < METRICS_SERIES_MAX; i++) {
		snprintf(v, sizeof(v), "c%d", i);
		ck_assert_int_eq(metrics_set(g, i, METRICS_L(v)), 0);
	}
	ck_assert_int_eq(metrics_set(g, 1, METRICS_L("one-too-many")), -ENOSPC);
	ck_assert_int_eq(metrics_set(g, 7, METRICS_L("c0")), 0); /* existing ones still move */
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "g{c=\"c0\"} 7\n"));
	ck_assert_ptr_null(strstr(text, "one-too-many"));
	free(text);
	metrics_clear(g);
	ck_assert_int_eq(metrics_set(g, 1, METRICS_L("one-too-many")), 0);
	text = render(m);
	/* the one update refused before the clear stays counted */
	ck_assert_str_eq(text, "# HELP g \n# TYPE g gauge\ng{c=\"one-too-many\"} 1\n"
	    "# HELP ckpt_metrics_series_dropped_total Updates of series not kept: their family "
	    "already had its maximum of series\n# TYPE ckpt_metrics_series_dropped_total counter\n"
	    "ckpt_metrics_series_dropped_total{family=\"g\"} 1\n");
	free(text);
	metrics_free(m);
}
END_TEST

struct full_log {
	pthread_mutex_t fl_mu;
	int fl_calls;
	char fl_family[8][METRICS_NAME_MAX + 1];
	size_t fl_max;
};

static void
note_full(void *arg, const char *family, size_t max)
{
	struct full_log *l = arg;

	pthread_mutex_lock(&l->fl_mu);
	if (l->fl_calls < 8)
		snprintf(l->fl_family[l->fl_calls], sizeof(l->fl_family[0]), "%s", family);
	l->fl_calls++;
	l->fl_max = max;
	pthread_mutex_unlock(&l->fl_mu);
}

/*
 * Past the series maximum nothing is silent: every refused update counts in
 * ckpt_metrics_series_dropped_total{family}, and the registry's on-full
 * function is called once per family that dropped, with the maximum; a
 * registry that never dropped renders no such family. The maximum is settable.
 */
START_TEST(metrics_counts_and_reports_series_over_the_maximum)
{
	struct full_log l = { .fl_mu = PTHREAD_MUTEX_INITIALIZER };
	struct metrics_fam *a, *b, *h;
	struct metrics *m;
	char v[16], *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	metrics_on_full(m, note_full, &l);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "a_total", "", "c", NULL, 0, &a), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "b_total", "", "c", NULL, 0, &b), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "h_seconds", "", "c",
	    metrics_latency_buckets, metrics_latency_nbuckets, &h), 0);
	ck_assert_int_eq(metrics_set_series_max(a, 0), -EINVAL);
	ck_assert_int_eq(metrics_set_series_max(a, METRICS_SERIES_LIMIT + 1), -EINVAL);
	ck_assert_int_eq(metrics_set_series_max(a, 3), 0);
	ck_assert_int_eq(metrics_set_series_max(b, 3), 0);
	for (int i = 0; i < 5; i++) { /* h keeps the default: more than 3 */
		snprintf(v, sizeof(v), "c%d", i);
		ck_assert_int_eq(metrics_observe(h, 0.1, METRICS_L(v)), 0);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(v, sizeof(v), "c%d", i);
		ck_assert_int_eq(metrics_inc(a, 1, METRICS_L(v)), 0);
		ck_assert_int_eq(metrics_inc(b, 1, METRICS_L(v)), 0);
	}
	text = render(m);
	ck_assert_ptr_null(strstr(text, "dropped"));
	free(text);
	ck_assert_int_eq(l.fl_calls, 0);

	for (int i = 3; i < 8; i++) { /* 5 refused in a, 2 in b */
		snprintf(v, sizeof(v), "c%d", i);
		ck_assert_int_eq(metrics_inc(a, 1, METRICS_L(v)), -ENOSPC);
		if (i < 5)
			ck_assert_int_eq(metrics_inc(b, 1, METRICS_L(v)), -ENOSPC);
	}
	ck_assert_int_eq(metrics_inc(a, 1, METRICS_L("c0")), 0); /* kept ones still count */
	ck_assert_int_eq(l.fl_calls, 2);
	ck_assert_str_eq(l.fl_family[0], "a_total");
	ck_assert_str_eq(l.fl_family[1], "b_total");
	ck_assert_uint_eq(l.fl_max, 3);
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "a_total{c=\"c0\"} 2\n"));
	ck_assert_ptr_null(strstr(text, "c7"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE ckpt_metrics_series_dropped_total counter\n"
	    "ckpt_metrics_series_dropped_total{family=\"a_total\"} 5\n"
	    "ckpt_metrics_series_dropped_total{family=\"b_total\"} 2\n"));
	ck_assert_ptr_null(strstr(text, "family=\"h_seconds\""));
	free(text);

	/* a larger maximum takes new series from now on */
	ck_assert_int_eq(metrics_set_series_max(a, 4), 0);
	ck_assert_int_eq(metrics_inc(a, 1, METRICS_L("c3")), 0);
	ck_assert_int_eq(metrics_inc(a, 1, METRICS_L("c4")), -ENOSPC);
	ck_assert_int_eq(l.fl_calls, 2); /* once per family */
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "a_total{c=\"c3\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "ckpt_metrics_series_dropped_total{family=\"a_total\"} 6\n"));
	free(text);
	metrics_free(m);
}
END_TEST

/* The value of the series a,b of family c in text (render()), or -1. */
static long
series_value(const char *text, const char *a, const char *b)
{
	char want[512];
	const char *at;

	snprintf(want, sizeof(want), "c{x=\"%s\",y=\"%s\"} ", a, b);
	at = strstr(text, want);
	return at != NULL ? strtol(at + strlen(want), NULL, 10) : -1;
}

START_TEST(metrics_finds_each_of_many_series)
{
	static char longv[METRICS_VALUE_MAX + 40];
	struct metrics_fam *c;
	struct metrics *m;
	char a[16], b[16], *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "c", "", "x,y", NULL, 0, &c), 0);
	/* Values whose concatenations are alike: ("ab","") is not ("a","b"). */
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L("ab", "")), 0);
	ck_assert_int_eq(metrics_inc(c, 2, METRICS_L("a", "b")), 0);
	ck_assert_int_eq(metrics_inc(c, 4, METRICS_L("", "ab")), 0);
	/* Thousands of series (the index grows many times), each counted i + 1 times, interleaved. */
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 3000; i++) {
			if (round == 2 && i % 3 != 0)
				continue;
			snprintf(a, sizeof(a), "n%d", i % 97);
			snprintf(b, sizeof(b), "c%d", i);
			ck_assert_int_eq(metrics_inc(c, 1, METRICS_L(a, b)), 0);
		}
	/* A value past METRICS_VALUE_MAX is the series of its first METRICS_VALUE_MAX bytes. */
	memset(longv, 'v', sizeof(longv) - 1);
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L(longv, "l")), 0);
	longv[METRICS_VALUE_MAX + 5] = 'w';
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L(longv, "l")), 0);
	text = render(m);
	ck_assert_int_eq(series_value(text, "ab", ""), 1);
	ck_assert_int_eq(series_value(text, "a", "b"), 2);
	ck_assert_int_eq(series_value(text, "", "ab"), 4);
	for (int i = 0; i < 3000; i += 7) {
		snprintf(a, sizeof(a), "n%d", i % 97);
		snprintf(b, sizeof(b), "c%d", i);
		ck_assert_int_eq(series_value(text, a, b), i % 3 == 0 ? 3 : 2);
	}
	longv[METRICS_VALUE_MAX] = '\0';
	ck_assert_int_eq(series_value(text, longv, "l"), 2);
	free(text);
	/* Cleared: the same values make new series from 0. */
	metrics_clear(c);
	ck_assert_int_eq(metrics_inc(c, 5, METRICS_L("a", "b")), 0);
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L("n0", "c0")), 0);
	ck_assert_int_eq(metrics_inc(c, 1, METRICS_L("n0", "c0")), 0);
	text = render(m);
	ck_assert_str_eq(text, "# HELP c \n# TYPE c counter\nc{x=\"a\",y=\"b\"} 5\n"
	                       "c{x=\"n0\",y=\"c0\"} 2\n");
	free(text);
	metrics_free(m);
}
END_TEST

static void
collect(void *arg, struct metrics *m)
{
	(void)m;
	metrics_set(arg, 42, NULL, 0);
}

START_TEST(metrics_runs_collectors_at_render)
{
	struct metrics_fam *g;
	struct metrics *m;
	char *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_GAUGE, "g", "", NULL, NULL, 0, &g), 0);
	ck_assert_int_eq(metrics_add_collector(m, collect, g), 0);
	text = render(m);
	ck_assert_str_eq(text, "# HELP g \n# TYPE g gauge\ng 42\n");
	free(text);
	metrics_free(m);
}
END_TEST

#define THREADS 4
#define PER_THREAD 20000

struct hammer_arg {
	struct metrics_fam **ha_f;
	int ha_id;
};

/*
 * Each thread: the same two series of a counter, one of its own (made by
 * whichever thread comes first: creation races with look-ups), a histogram
 * without labels and one with, and a counter of halves (adds of a double).
 */
static void *
hammer(void *arg)
{
	struct hammer_arg *a = arg;
	struct metrics_fam **f = a->ha_f;
	char own[16];

	snprintf(own, sizeof(own), "t%d", a->ha_id);
	for (int i = 0; i < PER_THREAD; i++) {
		char many[16];

		metrics_inc(f[0], 1, METRICS_L(i % 2 ? "odd" : "even"));
		metrics_inc(f[0], 2, METRICS_L(own));
		metrics_observe(f[1], 0.001, NULL, 0);
		metrics_observe(f[2], i % 2 ? 0.004 : 100, METRICS_L(i % 2 ? "x" : "y"));
		metrics_inc(f[3], 0.5, NULL, 0);
		snprintf(many, sizeof(many), "s%d", i % 500); /* 500 series, made by all */
		metrics_inc(f[4], 1, METRICS_L(many));
	}
	return NULL;
}

START_TEST(metrics_counts_exactly_across_threads)
{
	struct metrics_fam *f[5];
	struct hammer_arg args[THREADS];
	pthread_t t[THREADS];
	struct metrics *m;
	char *text, want[64];

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "n_total", "", "p", NULL, 0, &f[0]), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "d_seconds", "", NULL,
	    metrics_latency_buckets, metrics_latency_nbuckets, &f[1]), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_HISTOGRAM, "e_seconds", "", "k",
	    metrics_latency_buckets, metrics_latency_nbuckets, &f[2]), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "h_total", "", NULL, NULL, 0, &f[3]), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "s_total", "", "s", NULL, 0, &f[4]), 0);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct hammer_arg){ f, i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		char *mid = render(m); /* renders while others count */
		/* +Inf (the count) is never below a finite bucket, even mid-update */
		const char *inf = strstr(mid, "d_seconds_bucket{le=\"+Inf\"} ");
		const char *fin = strstr(mid, "d_seconds_bucket{le=\"60\"} ");
		if (inf != NULL && fin != NULL)
			ck_assert_int_ge(strtol(inf + strlen("d_seconds_bucket{le=\"+Inf\"} "), NULL, 10),
			    strtol(fin + strlen("d_seconds_bucket{le=\"60\"} "), NULL, 10));
		free(mid);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "n_total{p=\"even\"} 40000\n"));
	ck_assert_ptr_nonnull(strstr(text, "n_total{p=\"odd\"} 40000\n"));
	for (int i = 0; i < THREADS; i++) {
		snprintf(want, sizeof(want), "n_total{p=\"t%d\"} 40000\n", i);
		ck_assert_ptr_nonnull(strstr(text, want));
	}
	ck_assert_ptr_nonnull(strstr(text, "d_seconds_bucket{le=\"0.001\"} 80000\n"));
	ck_assert_ptr_nonnull(strstr(text, "d_seconds_count 80000\n"));
	ck_assert_ptr_nonnull(strstr(text, "e_seconds_bucket{k=\"x\",le=\"0.005\"} 40000\n"));
	ck_assert_ptr_nonnull(strstr(text, "e_seconds_bucket{k=\"y\",le=\"60\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "e_seconds_bucket{k=\"y\",le=\"+Inf\"} 40000\n"));
	ck_assert_ptr_nonnull(strstr(text, "e_seconds_sum{k=\"y\"} 4000000\n"));
	ck_assert_ptr_nonnull(strstr(text, "h_total 40000\n")); /* 80000 halves */
	for (int i = 0; i < 500; i++) {
		snprintf(want, sizeof(want), "s_total{s=\"s%d\"} 160\n", i);
		ck_assert_ptr_nonnull(strstr(text, want));
		*strstr(text, want) = '#'; /* each once */
		ck_assert_ptr_null(strstr(text, want));
	}
	ck_assert_ptr_null(strstr(text, "dropped"));
	free(text);
	metrics_free(m);
}
END_TEST

static void *
overflow(void *arg)
{
	struct metrics_fam *f = arg;
	char v[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(v, sizeof(v), "v%d", i);
		metrics_inc(f, 1, METRICS_L(v));
	}
	return NULL;
}

/* Threads racing past the maximum: the on-full function called once, every refused update counted. */
START_TEST(metrics_counts_drops_exactly_across_threads)
{
	struct full_log l = { .fl_mu = PTHREAD_MUTEX_INITIALIZER };
	pthread_t t[THREADS];
	struct metrics_fam *f;
	struct metrics *m;
	char *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	metrics_on_full(m, note_full, &l);
	ck_assert_int_eq(metrics_add_family(m, METRICS_COUNTER, "o_total", "", "v", NULL, 0, &f), 0);
	ck_assert_int_eq(metrics_set_series_max(f, 100), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, overflow, f), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(l.fl_calls, 1);
	text = render(m);
	/* which 100 series were kept depends on the race; every update is in one or the other */
	{
		long kept = 0, dropped;
		const char *p = text;
		while ((p = strstr(p, "o_total{v=\"")) != NULL) {
			p = strstr(p, "} ") + 2;
			kept += strtol(p, NULL, 10);
		}
		p = strstr(text, "ckpt_metrics_series_dropped_total{family=\"o_total\"} ");
		ck_assert_ptr_nonnull(p);
		dropped = strtol(strchr(p, '}') + 2, NULL, 10);
		ck_assert_int_eq(kept + dropped, THREADS * 1000); /* every update counted once */
		ck_assert_int_ge(dropped, THREADS * 900);
	}
	free(text);
	metrics_free(m);
}
END_TEST

/* A family without labels keeps its one series through metrics_clear(), at 0. */
START_TEST(metrics_clears_a_label_less_family_to_zero)
{
	struct metrics_fam *g;
	struct metrics *m;
	char *text;

	ck_assert_int_eq(metrics_new(&m), 0);
	ck_assert_int_eq(metrics_add_family(m, METRICS_GAUGE, "g", "", NULL, NULL, 0, &g), 0);
	ck_assert_int_eq(metrics_set(g, 5, NULL, 0), 0);
	metrics_clear(g);
	text = render(m);
	ck_assert_str_eq(text, "# HELP g \n# TYPE g gauge\ng 0\n");
	free(text);
	ck_assert_int_eq(metrics_set(g, 2, NULL, 0), 0);
	text = render(m);
	ck_assert_str_eq(text, "# HELP g \n# TYPE g gauge\ng 2\n");
	free(text);
	metrics_free(m);
}
END_TEST

/* The RPC layer counts for any service given rs_metrics: requests by method and code, bad ones. */
START_TEST(rpc_counts_requests_in_the_registry)
{
	static rpc_handler_fn none[16];
	struct rpc_server_config sc = { 0 };
	Ckpt__V1__Request req = CKPT__V1__REQUEST__INIT;
	struct rpc_server *s;
	struct metrics *m;
	uint8_t buf[64];
	nng_msg *reply;
	char *text;

	ck_assert_uint_le(ckpt__v1__nas__descriptor.n_methods, 16);
	ck_assert_int_eq(metrics_new(&m), 0);
	sc.rs_service = &ckpt__v1__nas__descriptor;
	sc.rs_handlers = none;
	sc.rs_metrics = m;
	ck_assert_int_eq(rpc_server_start(&sc, "inproc://test-metrics", &s), 0);
	ck_assert_int_eq(rpc_server_dispatch(s, "\xff\xff", 2, &reply), 0);
	nng_msg_free(reply);
	req.method = 4; /* Stat: no handler here */
	ck_assert_int_eq(rpc_server_dispatch(s, buf, ckpt__v1__request__pack(&req, buf), &reply), 0);
	nng_msg_free(reply);
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "ckpt_rpc_bad_requests_total{service=\"Nas\"} 1\n"));
	rpc_server_stop(s);
	free(text);
	metrics_free(m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, metrics_renders_the_exposition_format);
	tcase_add_test(tc, metrics_escapes_label_values_and_help);
	tcase_add_test(tc, metrics_starts_label_less_series_at_zero);
	tcase_add_loop_test(tc, metrics_checks_names_and_labels, 0,
	    (int)(sizeof(family_cases) / sizeof(family_cases[0])));
	tcase_add_test(tc, metrics_refuses_bad_updates);
	tcase_add_test(tc, metrics_bounds_series_per_family);
	tcase_add_test(tc, metrics_finds_each_of_many_series);
	tcase_add_test(tc, metrics_runs_collectors_at_render);
	tcase_add_test(tc, metrics_counts_exactly_across_threads);
	tcase_add_test(tc, metrics_counts_and_reports_series_over_the_maximum);
	tcase_add_test(tc, metrics_counts_drops_exactly_across_threads);
	tcase_add_test(tc, metrics_clears_a_label_less_family_to_zero);
	tcase_add_test(tc, rpc_counts_requests_in_the_registry);
	suite_add_tcase(s, tc);
	return test_run(s);
}
