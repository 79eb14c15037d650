/*
 * spec: the config file (a table of malformed files and their exact
 * FILE:LINE messages), words, INI -> spec -> protobuf -> spec, and specs
 * from the wire held against the local allow list.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec.h"
#include "../testrun.h"

static char tmp[256];
static char file[300];

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static void
setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ckpt_test_spec.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(file, sizeof(file), "%s/agent.ini", tmp);
}

static void
teardown(void)
{
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to the config file, "TMP" replaced by the temporary folder. */
static void
write_conf(const char *text)
{
	FILE *f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	for (const char *p = text; *p != '\0';) {
		if (strncmp(p, "TMP", 3) == 0) {
			fputs(tmp, f);
			p += 3;
		} else {
			fputc(*p++, f);
		}
	}
	fclose(f);
}

struct agent_conf_t {
	char *node;
	int64_t interval_ms;
	struct cfg_list label;
};

static const struct cfg_opt opts[] = {
	{ "node", CFG_STR, offsetof(struct agent_conf_t, node), NULL, 0, 0, 0, "ID", "" },
	{ "interval-ms", CFG_INT, offsetof(struct agent_conf_t, interval_ms), "1000", 1, 1000, 0,
	    "N", "" },
	{ "label", CFG_LIST, offsetof(struct agent_conf_t, label), NULL, 0, 0, 0, "K=V", "" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

#define ALLOW_EXEC                                                                              \
	"[allow]\ndrivers = exec\nprograms = /bin/sleep /bin/sh /bin/tar\nfolders = TMP\n"
/* Lines 1-4 are ALLOW_EXEC; a component starting on line 5. */
#define EXEC_HEAD "[component a]\ndriver = exec\nrun = /bin/sleep 600\n"

/* Lines 1-4; a lib component on lines 5-8. */
#define ALLOW_LIB "[allow]\ndrivers = lib\nprograms = /bin/sleep\nfolders = TMP\n"
#define LIB_HEAD "[component a]\ndriver = lib\nrun = /bin/sleep 600\nfolder = TMP\n"

#define Z10 "0000000000"
#define Z50 Z10 Z10 Z10 Z10 Z10

static const struct {
	const char *text;
	const char *want; /* after "FILE:" */
} malformed[] = {
	{ "x = 1\n", "1: x: a key before any section" },
	{ "[agnet]\n", "1: section: unknown section [agnet] (agent, allow, component NAME)" },
	{ "# empty\n[component a b]\n",
	    "2: component: 'a b' is not a name of 1-63 of [A-Za-z0-9._-]" },
	{ "[component a]\ndriver demo\n", "2: syntax: want KEY = VALUE, [SECTION] or a comment" },
	{ "[component a\ndriver = demo\n", "1: syntax: want KEY = VALUE, [SECTION] or a comment" },
	{ "[component a]\n", "1: driver: missing in [component a]" },
	{ "[component a]\ndriver = demo\ncolour = red\n", "3: colour: unknown key in [component a]" },
	{ "[component a]\ndriver = demo\ndriver = exec\n", "3: driver: given twice (first on line 2)" },
	{ "[component a]\ndriver = demo\n\n[component a]\ndriver = demo\n",
	    "4: component: 'a' is declared twice (first on line 1)" },
	{ "[component a]\ndriver = docker\n", "2: driver: unknown driver 'docker' (known: demo, exec, lib)" },
	{ "[component a]\ndriver = demo\nbytes = 2G\n", "3: bytes: invalid size '2G' (0 to 1G)" },
	{ "[component a]\ndriver = demo\nlimit = 0\n", "3: limit: invalid size '0' (1 to 1G, e.g. 64M)" },
	{ "[component a]\ndriver = demo\ninterval = soon\n",
	    "3: interval: invalid duration 'soon' (e.g. 500ms, 10s, 5m)" },
	{ "[component a]\ndriver = demo\ninterval = 5s\n  6s\n",
	    "4: interval: does not continue on another line" },
	{ "[component a]\ndriver = demo\nfresh = maybe\n", "3: fresh: want true or false, not 'maybe'" },
	{ "[component a]\ndriver = demo\nmax-restarts = -1\n",
	    "3: max-restarts: want 0 to 1000, not '-1'" },
	{ "[component a]\ndriver = demo\nrequires = zone=a bad@key\n",
	    "3: requires: invalid label 'bad@key' (KEY[=VALUE], KEY of [A-Za-z0-9._-], VALUE of at "
	    "most 63 bytes)" },
	{ "[component a]\ndriver = demo\nrun = /bin/sleep 1\n", "3: run: not a setting of driver demo" },
	{ "[component a]\ndriver = exec\nrun = /bin/sleep 1\ndump = /bin/true\nrestore = /bin/true\n"
	  "folder = /tmp/x\n",
	    "2: driver: driver 'exec' is not allowed on this node ([allow] drivers)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf - .\nrestore = /bin/tar -xf -\n",
	    "5: folder: missing in [component a] (driver exec)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar \"-cf - .\nrestore = /bin/tar -xf -\nfolder = TMP\n",
	    "8: dump: unterminated double quote" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/true\nrestore = /bin/tar -xf -\nfolder = TMP/c\n",
	    "8: dump: /bin/true is not allowed on this node ([allow] programs)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = tar -cf -\nrestore = /bin/tar -xf -\nfolder = TMP/c\n",
	    "8: dump: the program must be an absolute path, not 'tar'" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\nfolder = /etc/c\n",
	    "10: folder: /etc/c is not allowed on this node ([allow] folders)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\n"
	  "folder = TMP/../etc\n",
	    "10: folder: TMP/../etc is not allowed on this node ([allow] folders)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\n"
	  "folder = TMP/agent.ini/sub\n",
	    "10: folder: TMP/agent.ini/sub: Not a directory" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\nfolder = TMP/c\n"
	  "shell = true\n",
	    "11: shell: shell commands are not allowed on this node ([allow] shell)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\nfolder = TMP/c\n"
	  "user = nobody\n",
	    "11: user: running as 'nobody' is not allowed on this node ([allow] users)" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\nfolder = TMP/c\n"
	  "bytes = 1K\n",
	    "11: bytes: not a setting of driver exec" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nfolder = TMP/c\n",
	    "5: restore: give a restore command or a restore path" },
	{ ALLOW_EXEC EXEC_HEAD "dump = /bin/tar -cf -\nrestore = /bin/tar -xf -\nfolder = TMP/c\n"
	  "dump-path = ../state\n",
	    "11: dump-path: '../state' must be a path in an allowed folder, without '..'" },
	{ "[allow]\ndrivers = exec\nprograms = /opt/none/\nfolders = TMP\n"
	  "[component a]\ndriver = exec\nrun = /opt/none/prog\ndump = /opt/none/prog\n"
	  "restore = /opt/none/prog\nfolder = TMP\n",
	    "7: run: /opt/none/prog is not installed (No such file or directory)" },
	{ "[allow]\ndrivers = exec docker\n", "2: drivers: unknown driver 'docker' (known: demo, exec, lib)" },
	{ "[component a]\ndriver = lib\nrun = /bin/sleep 1\nfolder = TMP\n",
	    "2: driver: driver 'lib' is not allowed on this node ([allow] drivers)" },
	{ ALLOW_LIB LIB_HEAD "dump = /bin/tar -cf -\n", "9: dump: not a setting of driver lib" },
	{ ALLOW_LIB LIB_HEAD "bytes = 1K\n", "9: bytes: not a setting of driver lib" },
	{ ALLOW_LIB LIB_HEAD "user = nobody\n", "9: user: not a setting of driver lib" },
	{ ALLOW_LIB "[component a]\ndriver = lib\nfolder = TMP\n",
	    "5: run: missing in [component a] (driver lib)" },
	{ ALLOW_LIB "[component a]\ndriver = lib\nrun = /bin/sleep 600\n",
	    "5: folder: missing in [component a] (driver lib)" },
	{ ALLOW_LIB "[component a]\ndriver = lib\nrun = /bin/true\nfolder = TMP\n",
	    "7: run: /bin/true is not allowed on this node ([allow] programs)" },
	{ "[allow]\nprograms = tar\n", "2: programs: 'tar' is not an absolute path without '..'" },
	{ "[allow]\nshell = sometimes\n", "2: shell: want true or false, not 'sometimes'" },
	{ "[allow]\ncolours = red\n",
	    "2: colours: unknown key in [allow] (drivers, programs, folders, users, shell)" },
	{ "[allow]\nusers = a\nusers = b\n", "3: users: given twice (first on line 2)" },
	{ "[agent]\nnodes = n1\n", "2: nodes: unknown setting in [agent]" },
	{ "[agent]\nnode = n1\nnode = n2\n", "3: node: given twice (first on line 2)" },
	{ "[agent]\nnode = n1\n[component "
	  "a234567890123456789012345678901234567890123456789012345678901234]\n",
	    "3: component: 'a234567890123456789012345678901234567890123456789012345678901234' is not a "
	    "name of 1-63 of [A-Za-z0-9._-]" },
	{ "[component a]\ndriver = demo\nlimit = 1" Z50 Z50 Z50 Z50 "\n",
	    "3: line: longer than 198 bytes (continue a command on indented lines)" },
};

START_TEST(spec_malformed_files_name_file_line_and_field)
{
	struct spec_config *cfg = NULL;
	char err[600], want[1200], w2[1200];

	write_conf(malformed[_i].text);
	ck_assert_int_ne(spec_config_load(file, opts, NOPTS, &cfg, err, sizeof(err)), 0);
	ck_assert_ptr_null(cfg);
	/* want with TMP replaced */
	snprintf(w2, sizeof(w2), "%s:%s", file, malformed[_i].want);
	{
		size_t j = 0;
		for (const char *p = w2; *p != '\0' && j + 1 < sizeof(want);) {
			if (strncmp(p, "TMP", 3) == 0) {
				j += (size_t)snprintf(want + j, sizeof(want) - j, "%s", tmp);
				p += 3;
			} else {
				want[j++] = *p++;
			}
		}
		want[j] = '\0';
	}
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(spec_missing_file_is_named)
{
	struct spec_config *cfg = NULL;
	char err[600], want[600];

	ck_assert_int_eq(spec_config_load(file, opts, NOPTS, &cfg, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", file);
	ck_assert_str_eq(err, want);
}
END_TEST

/* ckptctl apply -f: components only, checked for form and nothing else. */
START_TEST(spec_file_holds_components_checked_for_form_only)
{
	struct spec_config *cfg = NULL;
	char err[600], want[700];

	/* Not installed, not allowed anywhere here: each node judges that, not the file. */
	write_conf("[component a]\ndriver = exec\nfolder = /nonexistent/a\n"
		   "run = /nonexistent/prog --serve\ndump = /bin/cat state\n"
		   "restore = /bin/sh -c \"cat >state\"\n[component b]\ndriver = demo\n");
	ck_assert_int_eq(spec_file_load(file, &cfg, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg->sc_nspecs, 2);
	ck_assert_str_eq(cfg->sc_specs[0]->sp_exec.xc_run[0], "/nonexistent/prog");
	spec_config_free(cfg);
	cfg = NULL;

	write_conf("[component a]\ndriver = exec\nfolder = /x\nrun = prog\ndump = /bin/cat s\n");
	ck_assert_int_eq(spec_file_load(file, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:4: run: ", file);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

	write_conf("[component l]\ndriver = lib\nfolder = /nonexistent/l\nrun = /nonexistent/app\n");
	ck_assert_msg(spec_file_load(file, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert(cfg->sc_specs[0]->sp_exec.xc_run_only);
	spec_config_free(cfg);
	cfg = NULL;

	write_conf("[component a]\ndriver = rocket\n");
	ck_assert_int_eq(spec_file_load(file, &cfg, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "unknown driver 'rocket'"));

	write_conf("[agent]\nnode = n1\n");
	ck_assert_int_eq(spec_file_load(file, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: section: [agent] belongs in an agent's config file", file);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

	write_conf("# nothing\n");
	ck_assert_int_eq(spec_file_load(file, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: no [component NAME] section", file);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(cfg);
}
END_TEST

static const char good[] =
	"# An agent's config\n"
	"[agent]\n"
	"node = n1\n"
	"label = zone=a\n"
	"label = ssd=yes ; inline comment\n"
	"\n"
	"[allow]\n"
	"drivers = exec\n"
	"programs = /bin/tar /bin/sleep\n"
	"  /bin/sh\n"
	"folders = TMP\n"
	"users = nobody\n"
	"\n"
	"[component files]\n"
	"driver = exec\n"
	"run = /bin/sleep 600\n"
	"dump = /bin/tar -C data --sort=name\n"
	"  -cf - .\n"
	"restore = /bin/sh -c \"mkdir -p data &&\n"
	"    exec /bin/tar -C data -xf -\"\n"
	"quiesce = /bin/sh -c \"echo \\\"paused\\\" > q\"\n"
	"resume = /bin/sh -c \"rm -f q\"\n"
	"env = A=1 \"B=two words\" EMPTY=\n"
	"folder = TMP/files\n"
	"log-path = run.log\n"
	"dump-timeout = 30s\n"
	"restore-timeout = 2m\n"
	"limit = 16M\n"
	"interval = 5s\n"
	"requires = zone=a ssd\n"
	"max-restarts = 5\n"
	"backoff = 2s\n"
	"user = nobody\n"
	"\n"
	"[component d1]\n"
	"driver = demo\n"
	"bytes = 128K\n"
	"fresh = true\n";

static void
assert_strv(char **got, const char *const *want)
{
	size_t i = 0;
	ck_assert_ptr_nonnull(got);
	for (; want[i] != NULL; i++) {
		ck_assert_ptr_nonnull(got[i]);
		ck_assert_str_eq(got[i], want[i]);
	}
	ck_assert_ptr_null(got[i]);
}

static void
assert_files_spec(const struct spec *s)
{
	static const char *const run[] = { "/bin/sleep", "600", NULL };
	static const char *const dump[] = { "/bin/tar", "-C", "data", "--sort=name", "-cf", "-",
		".", NULL };
	static const char *const restore[] = { "/bin/sh", "-c",
		"mkdir -p data && exec /bin/tar -C data -xf -", NULL };
	static const char *const quiesce[] = { "/bin/sh", "-c", "echo \"paused\" > q", NULL };
	static const char *const env[] = { "A=1", "B=two words", "EMPTY=", NULL };
	char dir[400];

	ck_assert_str_eq(s->sp_name, "files");
	ck_assert_str_eq(s->sp_driver, "exec");
	assert_strv(s->sp_exec.xc_run, run);
	assert_strv(s->sp_exec.xc_dump, dump);
	assert_strv(s->sp_exec.xc_restore, restore);
	assert_strv(s->sp_exec.xc_quiesce, quiesce);
	assert_strv(s->sp_exec.xc_env, env);
	snprintf(dir, sizeof(dir), "%s/files", tmp);
	ck_assert_str_eq(s->sp_exec.xc_dir, dir);
	ck_assert_str_eq(s->sp_exec.xc_log_path, "run.log");
	ck_assert_ptr_null(s->sp_exec.xc_dump_path);
	ck_assert_uint_eq(s->sp_exec.xc_dump_timeout_ms, 30000);
	ck_assert_uint_eq(s->sp_exec.xc_restore_timeout_ms, 120000);
	ck_assert_uint_eq(s->sp_limit, 16 << 20);
	ck_assert_uint_eq(s->sp_interval_ms, 5000);
	ck_assert_uint_eq(s->sp_nrequires, 2);
	ck_assert_str_eq(s->sp_requires[0].sr_key, "zone");
	ck_assert_str_eq(s->sp_requires[0].sr_value, "a");
	ck_assert_str_eq(s->sp_requires[1].sr_key, "ssd");
	ck_assert_str_eq(s->sp_requires[1].sr_value, "");
	ck_assert_uint_eq(s->sp_max_restarts, 5);
	ck_assert_uint_eq(s->sp_backoff_ms, 2000);
	ck_assert_str_eq(s->sp_user, "nobody");
	ck_assert(!s->sp_exec.xc_shell);
	ck_assert(!s->sp_fresh);
}

START_TEST(spec_config_loads_agent_allow_and_components)
{
	struct spec_config *cfg = NULL;
	char err[600];

	write_conf(good);
	ck_assert_msg(spec_config_load(file, opts, NOPTS, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg->sc_nagent, 3);
	ck_assert_str_eq(cfg->sc_agent[0].ss_key, "node");
	ck_assert_str_eq(cfg->sc_agent[0].ss_value, "n1");
	ck_assert_int_eq(cfg->sc_agent[0].ss_line, 3);
	ck_assert_str_eq(cfg->sc_agent[2].ss_key, "label");
	ck_assert_str_eq(cfg->sc_agent[2].ss_value, "ssd=yes");
	ck_assert_str_eq(cfg->sc_allow.sa_programs[2], "/bin/sh");
	ck_assert_ptr_null(cfg->sc_allow.sa_programs[3]);
	ck_assert(!cfg->sc_allow.sa_shell);
	ck_assert_uint_eq(cfg->sc_nspecs, 2);
	assert_files_spec(cfg->sc_specs[0]);
	ck_assert_int_eq(cfg->sc_specs[0]->sp_line, 14);
	ck_assert_int_eq(cfg->sc_specs[1]->sp_line, 35);
	ck_assert(cfg->sc_specs[0]->sp_exec.xc_user_set); /* resolved by spec_check */
	ck_assert_str_eq(cfg->sc_specs[1]->sp_name, "d1");
	ck_assert_str_eq(cfg->sc_specs[1]->sp_driver, "demo");
	ck_assert_uint_eq(cfg->sc_specs[1]->sp_demo_bytes, 128 << 10);
	ck_assert(cfg->sc_specs[1]->sp_fresh);
	spec_config_free(cfg);
}
END_TEST

START_TEST(spec_roundtrip_ini_spec_pb_spec)
{
	struct spec_config *cfg = NULL;
	struct spec *back = NULL;
	Ckpt__V1__ComponentSpec *pb = NULL, *pb2 = NULL, *un = NULL;
	uint8_t *buf, *buf2;
	size_t len, len2;
	char err[600];

	write_conf(good);
	ck_assert_msg(spec_config_load(file, opts, NOPTS, &cfg, err, sizeof(err)) == 0, "%s", err);
	for (size_t i = 0; i < cfg->sc_nspecs; i++) {
		ck_assert_int_eq(spec_to_pb(cfg->sc_specs[i], &pb), 0);
		len = ckpt__v1__component_spec__get_packed_size(pb);
		buf = malloc(len);
		ckpt__v1__component_spec__pack(pb, buf);
		un = ckpt__v1__component_spec__unpack(NULL, len, buf);
		ck_assert_ptr_nonnull(un);
		ck_assert_msg(spec_from_pb(un, &back, err, sizeof(err)) == 0, "%s", err);
		ck_assert_msg(spec_check(back, &cfg->sc_allow, err, sizeof(err)) == 0, "%s", err);
		if (i == 0)
			assert_files_spec(back);
		ck_assert_str_eq(back->sp_name, cfg->sc_specs[i]->sp_name);
		ck_assert_uint_eq(back->sp_demo_bytes, cfg->sc_specs[i]->sp_demo_bytes);
		ck_assert_int_eq(back->sp_fresh, cfg->sc_specs[i]->sp_fresh);
		/* And the same bytes again. */
		ck_assert_int_eq(spec_to_pb(back, &pb2), 0);
		len2 = ckpt__v1__component_spec__get_packed_size(pb2);
		ck_assert_uint_eq(len2, len);
		buf2 = malloc(len2);
		ckpt__v1__component_spec__pack(pb2, buf2);
		ck_assert_mem_eq(buf, buf2, len);
		free(buf);
		free(buf2);
		spec_pb_free(pb);
		spec_pb_free(pb2);
		ckpt__v1__component_spec__free_unpacked(un, NULL);
		spec_free(back);
		back = NULL;
	}
	spec_config_free(cfg);
}
END_TEST

START_TEST(spec_lib_component_loads_run_only_and_travels)
{
	struct spec_config *cfg = NULL;
	struct spec *back = NULL;
	Ckpt__V1__ComponentSpec *pb = NULL, *un = NULL;
	uint8_t *buf;
	size_t len;
	char err[600];

	write_conf(ALLOW_LIB LIB_HEAD "env = A=1\nlog-path = out.log\nlimit = 1M\n");
	ck_assert_msg(spec_config_load(file, opts, NOPTS, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg->sc_nspecs, 1);
	ck_assert_str_eq(cfg->sc_specs[0]->sp_driver, "lib");
	ck_assert(cfg->sc_specs[0]->sp_exec.xc_run_only);
	ck_assert_ptr_null(cfg->sc_specs[0]->sp_exec.xc_dump);
	ck_assert_str_eq(cfg->sc_specs[0]->sp_exec.xc_env[0], "A=1");
	ck_assert_uint_eq(cfg->sc_specs[0]->sp_exec.xc_limit, 1 << 20);
	/* On the wire as exec settings, run alone; back as a lib spec. */
	ck_assert_int_eq(spec_to_pb(cfg->sc_specs[0], &pb), 0);
	ck_assert_int_eq(pb->settings_case, CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC);
	len = ckpt__v1__component_spec__get_packed_size(pb);
	buf = malloc(len);
	ckpt__v1__component_spec__pack(pb, buf);
	un = ckpt__v1__component_spec__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(un);
	ck_assert_msg(spec_from_pb(un, &back, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(spec_check(back, &cfg->sc_allow, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(back->sp_driver, "lib");
	ck_assert(back->sp_exec.xc_run_only);
	ck_assert_str_eq(back->sp_exec.xc_run[0], "/bin/sleep");
	/* A user to run as, from the wire: refused (the local socket is the agent's user's). */
	back->sp_user = strdup("nobody");
	ck_assert_int_eq(spec_check(back, &cfg->sc_allow, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "user: not a setting of driver lib"));
	free(back->sp_user);
	back->sp_user = NULL;
	/* A node that allows exec only refuses it. */
	free(cfg->sc_allow.sa_drivers[0]);
	cfg->sc_allow.sa_drivers[0] = strdup("exec");
	ck_assert_int_eq(spec_check(back, &cfg->sc_allow, err, sizeof(err)), -EACCES);
	free(buf);
	spec_pb_free(pb);
	ckpt__v1__component_spec__free_unpacked(un, NULL);
	spec_free(back);
	spec_config_free(cfg);
}
END_TEST

/* A well-formed exec spec as a node would receive it. */
static struct spec *
wire_spec(char **run, bool shell, const char *user, const char *folder)
{
	Ckpt__V1__ComponentSpec pb = CKPT__V1__COMPONENT_SPEC__INIT;
	Ckpt__V1__ExecSettings ex = CKPT__V1__EXEC_SETTINGS__INIT;
	static char *dump[] = { "/bin/tar", "-cf", "-", ".", NULL };
	static char *restore[] = { "/bin/tar", "-xf", "-", NULL };
	struct spec *s = NULL;
	char err[400], dir[400];
	size_t n = 0;

	while (run[n] != NULL)
		n++;
	snprintf(dir, sizeof(dir), "%s", folder != NULL ? folder : tmp);
	pb.name = "w";
	pb.driver = "exec";
	pb.settings_case = CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC;
	pb.exec = &ex;
	ex.n_run = n;
	ex.run = run;
	ex.n_dump = shell ? 1 : 4;
	ex.dump = shell ? (char *[]){ "tar -cf - .", NULL } : dump;
	ex.n_restore = shell ? 1 : 3;
	ex.restore = shell ? (char *[]){ "tar -xf -", NULL } : restore;
	ex.folder = dir;
	ex.shell = shell;
	ex.user = (char *)(user != NULL ? user : "");
	ck_assert_msg(spec_from_pb(&pb, &s, err, sizeof(err)) == 0, "%s", err);
	return s;
}

START_TEST(spec_from_the_wire_is_held_against_the_allow_list)
{
	char *progs[] = { "/bin/tar", "/bin/sleep", NULL };
	char *folders[] = { tmp, NULL };
	char *drivers[] = { "exec", NULL };
	char *users[] = { "nobody", NULL };
	struct spec_allow none = { 0 };
	struct spec_allow a = { .sa_drivers = drivers, .sa_programs = progs, .sa_folders = folders };
	char *sleep_run[] = { "/bin/sleep", "600", NULL };
	char *rm_run[] = { "/bin/rm", "-rf", "/", NULL };
	char *sh_run[] = { "sleep 600; rm -rf /", NULL };
	char err[400];
	struct spec *s;

	s = wire_spec(sleep_run, false, NULL, NULL);
	ck_assert_msg(spec_check(s, &a, err, sizeof(err)) == 0, "%s", err);
	/* Nothing but demo by default. */
	ck_assert_int_eq(spec_check(s, &none, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "driver: driver 'exec' is not allowed on this node ([allow] drivers)");
	spec_free(s);

	s = wire_spec(rm_run, false, NULL, NULL);
	ck_assert_int_eq(spec_check(s, &a, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "run: /bin/rm is not allowed on this node ([allow] programs)");
	spec_free(s);

	s = wire_spec(sh_run, true, NULL, NULL);
	ck_assert_int_eq(spec_check(s, &a, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "shell: shell commands are not allowed on this node ([allow] shell)");
	a.sa_shell = true;
	/* A shell allowed still needs /bin/sh allowed as a program. */
	ck_assert_int_eq(spec_check(s, &a, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "run: /bin/sh is not allowed on this node ([allow] programs)");
	a.sa_shell = false;
	spec_free(s);

	s = wire_spec(sleep_run, false, "nobody", NULL);
	ck_assert_int_eq(spec_check(s, &a, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "user: running as 'nobody' is not allowed on this node ([allow] users)");
	a.sa_users = users;
	ck_assert_msg(spec_check(s, &a, err, sizeof(err)) == 0, "%s", err);
	ck_assert(s->sp_exec.xc_user_set);
	spec_free(s);

	s = wire_spec(sleep_run, false, NULL, "/etc");
	ck_assert_int_eq(spec_check(s, &a, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "folder: /etc is not allowed on this node ([allow] folders)");
	spec_free(s);
}
END_TEST

START_TEST(spec_from_pb_refuses_malformed_messages)
{
	Ckpt__V1__ComponentSpec pb = CKPT__V1__COMPONENT_SPEC__INIT;
	Ckpt__V1__ExecSettings ex = CKPT__V1__EXEC_SETTINGS__INIT;
	Ckpt__V1__DemoSettings demo = CKPT__V1__DEMO_SETTINGS__INIT;
	char *words[SPEC_WORDS_MAX + 1];
	struct spec *s = NULL;
	char err[400];

	for (size_t i = 0; i <= SPEC_WORDS_MAX; i++)
		words[i] = "/bin/true";
	pb.name = "bad name";
	pb.driver = "demo";
	ck_assert_int_eq(spec_from_pb(&pb, &s, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "name: not 1-63 of [A-Za-z0-9._-]");
	pb.name = "ok";
	ck_assert_int_eq(spec_from_pb(&pb, &s, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "driver: demo without demo settings");
	pb.driver = "exec";
	pb.settings_case = CKPT__V1__COMPONENT_SPEC__SETTINGS_DEMO;
	pb.demo = &demo;
	ck_assert_int_eq(spec_from_pb(&pb, &s, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "driver: exec without exec settings");
	pb.settings_case = CKPT__V1__COMPONENT_SPEC__SETTINGS_EXEC;
	pb.exec = &ex;
	ex.n_run = SPEC_WORDS_MAX + 1;
	ex.run = words;
	ck_assert_int_eq(spec_from_pb(&pb, &s, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "run: more than 128 words");
	ex.n_run = 1;
	ck_assert_int_eq(spec_from_pb(&pb, &s, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "dump: empty command");
	ck_assert_ptr_null(s);
}
END_TEST

static const struct {
	const char *in;
	const char *want[6]; /* NULL-terminated; want[0] "!" + reason: an error */
} words_table[] = {
	{ "a b  c", { "a", "b", "c", NULL } },
	{ "  \"a b\" c ", { "a b", "c", NULL } },
	{ "--save \"\"", { "--save", "", NULL } },
	{ "a\\ b", { "a b", NULL } },
	{ "\"x\\\"y\" \\\\", { "x\"y", "\\", NULL } },
	{ "a\"b c\"d", { "ab cd", NULL } },
	{ "one\n two", { "one", "two", NULL } },
	{ "", { NULL } },
	{ "\"abc", { "!unterminated double quote", NULL } },
	{ "abc\\", { "!a backslash ends the value", NULL } },
};

START_TEST(spec_words_split_and_quote)
{
	char **w = NULL, err[200];
	int rv = spec_words(words_table[_i].in, 8, &w, err, sizeof(err));

	if (words_table[_i].want[0] != NULL && words_table[_i].want[0][0] == '!') {
		ck_assert_int_eq(rv, -EINVAL);
		ck_assert_str_eq(err, words_table[_i].want[0] + 1);
		return;
	}
	ck_assert_int_eq(rv, 0);
	assert_strv(w, words_table[_i].want);
	spec_words_free(w);
}
END_TEST

static Suite *
spec_suite(void)
{
	Suite *s = suite_create("spec");
	TCase *tc = tcase_create("spec");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, spec_malformed_files_name_file_line_and_field, 0,
	    sizeof(malformed) / sizeof(malformed[0]));
	tcase_add_test(tc, spec_missing_file_is_named);
	tcase_add_test(tc, spec_config_loads_agent_allow_and_components);
	tcase_add_test(tc, spec_roundtrip_ini_spec_pb_spec);
	tcase_add_test(tc, spec_lib_component_loads_run_only_and_travels);
	tcase_add_test(tc, spec_from_the_wire_is_held_against_the_allow_list);
	tcase_add_test(tc, spec_from_pb_refuses_malformed_messages);
	tcase_add_test(tc, spec_file_holds_components_checked_for_form_only);
	tcase_add_loop_test(tc, spec_words_split_and_quote, 0,
	    sizeof(words_table) / sizeof(words_table[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run(spec_suite());
}
