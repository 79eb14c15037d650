#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "err.h"
#include "sha.h"
#include "util.h"
#include "../testrun.h"

#include <lmdb.h>
#include <nng/nng.h>

START_TEST(durations_parse)
{
	static const struct {
		const char *s;
		int rv;
		uint64_t ms;
	} cases[] = {
		{ "3s", 0, 3000 }, { "3", 0, 3000 }, { "250ms", 0, 250 }, { "1.5s", 0, 1500 },
		{ "2m", 0, 120000 }, { "1h", 0, 3600000 }, { "0", 0, 0 }, { "", -EINVAL, 0 },
		{ "-1s", -EINVAL, 0 }, { "3x", -EINVAL, 0 }, { "s", -EINVAL, 0 }, { "nan", -EINVAL, 0 },
		{ "1e30h", -ERANGE, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 12345;
		int rv = util_parse_duration_ms(cases[i].s, &ms);
		ck_assert_msg(rv == cases[i].rv, "'%s': rv %d", cases[i].s, rv);
		if (rv == 0)
			ck_assert_uint_eq(ms, cases[i].ms);
		else
			ck_assert_uint_eq(ms, 12345); /* untouched on failure */
	}
}
END_TEST

START_TEST(sizes_parse)
{
	static const struct {
		const char *s;
		int rv;
		uint64_t v;
	} cases[] = {
		{ "4096", 0, 4096 }, { "64K", 0, 65536 }, { "64KiB", 0, 65536 }, { "16M", 0, 16u << 20 },
		{ "1G", 0, 1u << 30 }, { "0", 0, 0 }, { "", -EINVAL, 0 }, { "-1", -EINVAL, 0 },
		{ "1Q", -EINVAL, 0 }, { "99999999999T", -ERANGE, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 7;
		int rv = util_parse_size(cases[i].s, &v);
		ck_assert_msg(rv == cases[i].rv, "'%s': rv %d", cases[i].s, rv);
		if (rv == 0)
			ck_assert_uint_eq(v, cases[i].v);
	}
}
END_TEST

START_TEST(sizes_format_for_people)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} cases[] = { { 0, "0 B" }, { 1023, "1023 B" }, { 1024, "1 KiB" }, { 1536, "1.5 KiB" },
		{ 262178, "256.0 KiB" }, { 1572864, "1.5 MiB" }, { 256u << 20, "256 MiB" },
		{ (uint64_t)1 << 30, "1 GiB" }, { UINT64_MAX, "16.0 EiB" } };
	char buf[UTIL_SIZE_STR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(util_fmt_size(cases[i].bytes, buf), cases[i].text);
}
END_TEST

START_TEST(errors_map_to_wire_codes_and_back)
{
	static const struct {
		int e;
		err_code code;
	} cases[] = {
		{ 0, CKPT__V1__CODE__OK }, { -EINVAL, CKPT__V1__CODE__INVALID_ARGUMENT },
		{ -ENOENT, CKPT__V1__CODE__NOT_FOUND }, { -EEXIST, CKPT__V1__CODE__ALREADY_EXISTS },
		{ -EACCES, CKPT__V1__CODE__PERMISSION_DENIED },
		{ -ENOSPC, CKPT__V1__CODE__RESOURCE_EXHAUSTED },
		{ -ESTALE, CKPT__V1__CODE__FAILED_PRECONDITION },
		{ -ECONNREFUSED, CKPT__V1__CODE__UNAVAILABLE },
		{ -ETIMEDOUT, CKPT__V1__CODE__DEADLINE_EXCEEDED }, { -EBADMSG, CKPT__V1__CODE__DATA_LOSS },
		{ -ENOSYS, CKPT__V1__CODE__UNIMPLEMENTED }, { -EPERM, CKPT__V1__CODE__UNAUTHENTICATED },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(err_to_code(cases[i].e), cases[i].code);
		ck_assert_int_eq(err_from_code(cases[i].code), cases[i].e);
	}
	ck_assert_int_eq(err_to_code(-ENOTTY), CKPT__V1__CODE__INTERNAL);
	/* nasc's refusal of a NAS list naming different stores. */
	ck_assert_int_eq(err_to_code(-EXDEV), CKPT__V1__CODE__FAILED_PRECONDITION);
	ck_assert_str_eq(err_code_name(CKPT__V1__CODE__DATA_LOSS), "DATA_LOSS");
	ck_assert_str_eq(err_code_name((err_code)999), "UNKNOWN_CODE");
}
END_TEST

START_TEST(foreign_codes_translate)
{
	ck_assert_int_eq(err_from_nng(NNG_ETIMEDOUT), -ETIMEDOUT);
	ck_assert_int_eq(err_from_nng(NNG_ECONNREFUSED), -ECONNREFUSED);
	ck_assert_int_eq(err_from_nng(0), 0);
	ck_assert_int_eq(err_from_mdb(MDB_MAP_FULL), -ENOSPC);
	ck_assert_int_eq(err_from_mdb(MDB_NOTFOUND), -ENOENT);
	ck_assert_int_eq(err_from_mdb(MDB_CORRUPTED), -EBADMSG);
	ck_assert_int_eq(err_from_mdb(EACCES), -EACCES);
}
END_TEST

START_TEST(sha_matches_known_vectors)
{
	uint8_t d[SHA_LEN], e[SHA_LEN];
	char hex[SHA_HEX_LEN + 1];
	struct sha_ctx *c;

	sha256("", 0, d);
	sha_hex(d, SHA_LEN, hex);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256("abc", 3, d);
	sha_hex(d, SHA_LEN, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_int_eq(sha_parse_hex(hex, e), 0);
	ck_assert_mem_eq(d, e, SHA_LEN);
	ck_assert_int_eq(sha_new(&c), 0);
	sha_update(c, "a", 1);
	sha_update(c, "bc", 2);
	sha_final(c, e);
	ck_assert_mem_eq(d, e, SHA_LEN);
	/* sha_final() starts the context again: the same digest from it once more. */
	memset(e, 0, SHA_LEN);
	sha_update(c, "abc", 3);
	sha_final(c, e);
	ck_assert_mem_eq(d, e, SHA_LEN);
	sha_free(c);
	ck_assert_int_eq(sha_parse_hex("xyz", e), -EINVAL);
	hex[5] = 'g';
	ck_assert_int_eq(sha_parse_hex(hex, e), -EINVAL);
}
END_TEST

static long
minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Whether this kernel has MADV_POPULATE_WRITE / _READ (5.14 and later). */
static bool
populate_supported(void)
{
#if defined(MADV_POPULATE_WRITE) && defined(MADV_POPULATE_READ)
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok = p != MAP_FAILED && madvise(p, (size_t)page, MADV_POPULATE_WRITE) == 0;
	if (p != MAP_FAILED)
		munmap(p, (size_t)page);
	return ok;
#else
	return false;
#endif
}

/* Minor faults taken writing each page of a fresh anonymous mapping, util_prefault()ed or not. */
static long
anon_write_faults(size_t len, bool prefault)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long f0, f1;

	ck_assert_ptr_ne(p, MAP_FAILED);
	madvise(p, len, MADV_NOHUGEPAGE);
	if (prefault)
		util_prefault(p, len);
	f0 = minor_faults();
	for (size_t o = 0; o < len; o += page)
		p[o] = 1;
	f1 = minor_faults();
	munmap(p, len);
	return f1 - f0;
}

/* Minor faults taken reading each page of a mapping of fd, util_prefault_read()ed or not. */
static long
file_read_faults(int fd, size_t len, bool prefault, unsigned *ret_sum)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	const volatile uint8_t *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	unsigned sum = 0;
	long f0, f1;

	ck_assert_ptr_ne((const void *)m, MAP_FAILED);
	if (prefault)
		util_prefault_read((const void *)m, len);
	f0 = minor_faults();
	for (size_t o = 0; o < len; o += page)
		sum += m[o];
	f1 = minor_faults();
	munmap((void *)(uintptr_t)m, len);
	*ret_sum = sum;
	return f1 - f0;
}

struct slow_reader {
	int sr_fd;
	uint8_t *sr_buf;
	size_t sr_len;
};

/* Reads in small bites with pauses, so that the writer's sends time out half done. */
static void *
slow_reader_main(void *arg)
{
	struct slow_reader *r = arg;
	ssize_t k;

	while ((k = read(r->sr_fd, r->sr_buf + r->sr_len, 4096)) > 0) {
		r->sr_len += (size_t)k;
		if (r->sr_len % (64 << 10) < 4096)
			usleep(20000);
	}
	return NULL;
}

static volatile sig_atomic_t ticks;

static void
on_tick(int sig)
{
	(void)sig;
	ticks++;
}

/*
 * Short writes and EINTR (a timer's signal, without SA_RESTART, cuts a
 * blocked send) go on where they stopped.
 */
START_TEST(writev_all_goes_on_after_short_writes)
{
	enum { PIECES = 300, PIECE = 1000 };
	static uint8_t data[PIECES * PIECE], got[PIECES * PIECE];
	struct iovec iov[PIECES];
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } }, off = { { 0, 0 }, { 0, 0 } };
	struct slow_reader r = { -1, got, 0 };
	struct sigaction sa;
	int sv[2], sndbuf = 4096;
	pthread_t t;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_tick;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	for (int i = 0; i < PIECES; i++)
		iov[i] = (struct iovec){ data + (size_t)i * PIECE, PIECE };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	r.sr_fd = sv[1];
	ck_assert_int_eq(pthread_create(&t, NULL, slow_reader_main, &r), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	ck_assert_int_eq(util_writev_all(sv[0], iov, PIECES), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
	ck_assert_int_gt(ticks, 0);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	ck_assert_uint_eq(r.sr_len, sizeof(data));
	ck_assert_int_eq(memcmp(got, data, sizeof(data)), 0);
	/* A closed reader: the error, not a loop (SIGPIPE ignored, as ckptctl does). */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	iov[0] = (struct iovec){ data, PIECE };
	ck_assert_int_eq(util_writev_all(sv[0], iov, 1), -EPIPE);
	close(sv[0]);
}
END_TEST

START_TEST(prefault_keeps_contents_and_spares_the_faults)
{
	size_t len = 4u << 20;
	uint8_t *heap = malloc(len + 3);
	size_t bad = 0;

	/* Contents unchanged, at any alignment, short or long. */
	ck_assert_ptr_nonnull(heap);
	for (size_t i = 0; i < len + 3; i++)
		heap[i] = (uint8_t)(i * 31 + 7);
	util_prefault(heap + 3, len);
	util_prefault(heap + 1, 100);
	util_prefault(heap, 0);
	for (size_t i = 0; i < len + 3; i++)
		bad += heap[i] != (uint8_t)(i * 31 + 7);
	ck_assert_uint_eq(bad, 0);
	free(heap);

	/*
	 * Fresh anonymous pages written after util_prefault take far fewer
	 * faults than without (a sanitizer's shadow pages fault in both).
	 */
	if (populate_supported())
		ck_assert_int_lt(2 * anon_write_faults(len, true), anon_write_faults(len, false));
}
END_TEST

START_TEST(prefault_read_maps_a_file)
{
	size_t len = 2u << 20, page = (size_t)sysconf(_SC_PAGESIZE);
	char path[] = "/tmp/ckpt-test-prefault.XXXXXX";
	int fd = mkstemp(path);
	uint8_t *buf = malloc(len);
	unsigned sum_pre = 0, sum = 0;
	long pre, plain;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 0x5a, len);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	free(buf);
	pre = file_read_faults(fd, len, true, &sum_pre);
	plain = file_read_faults(fd, len, false, &sum);
	ck_assert_uint_eq(sum_pre, 0x5au * (unsigned)(len / page));
	ck_assert_uint_eq(sum, sum_pre);
	/* Under AddressSanitizer its shadow pages take faults of their own: contents only. */
#if !defined(__SANITIZE_ADDRESS__)
	if (populate_supported())
		ck_assert_int_lt(pre, plain);
#else
	(void)pre;
	(void)plain;
#endif
	close(fd);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, durations_parse);
	tcase_add_test(tc, sizes_parse);
	tcase_add_test(tc, sizes_format_for_people);
	tcase_add_test(tc, errors_map_to_wire_codes_and_back);
	tcase_add_test(tc, foreign_codes_translate);
	tcase_add_test(tc, sha_matches_known_vectors);
	tcase_add_test(tc, prefault_keeps_contents_and_spares_the_faults);
	tcase_add_test(tc, writev_all_goes_on_after_short_writes);
	tcase_add_test(tc, prefault_read_maps_a_file);
	suite_add_tcase(s, tc);
	return test_run(s);
}
