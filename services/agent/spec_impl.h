/*
 * spec_impl: what spec.c, spec_ini.c and spec_pb.c share (private to them).
 */
#ifndef CKPT_AGENT_SPEC_IMPL_H
#define CKPT_AGENT_SPEC_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "spec.h"

#define DRIVER_DEMO "demo"
#define DRIVER_EXEC "exec"
#define DRIVER_LIB "lib" /* exec_conf with xc_run_only; its settings travel as ExecSettings */

/* A spec with the defaults (limit, demo bytes, restart policy). NULL: no memory. */
struct spec *spec_new(void);
/* A NULL-terminated copy of v[0..n) (free with spec_words_free). */
char **spec_strv_dup(char *const *v, size_t n);
size_t spec_strv_len(char *const *v);
/* A ".." component anywhere in p. */
bool spec_path_has_dotdot(const char *p);
/* "KEY[=VALUE]" into r; -EINVAL when malformed or too long. */
int spec_req_parse(const char *word, struct spec_req *r);

#endif
