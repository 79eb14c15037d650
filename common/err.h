/*
 * err: the one error convention of ckpt.
 *
 * Every function in common/ and the services returns int: 0 on success, a
 * negative errno value on failure. This module is the only place that
 * translates foreign codes (nng, LMDB) into that convention, and the only
 * place that maps it to and from the wire status codes of rpc.proto.
 *
 *   wire code            errno
 *   INVALID_ARGUMENT     -EINVAL     malformed or out-of-range input
 *   NOT_FOUND            -ENOENT
 *   ALREADY_EXISTS       -EEXIST
 *   PERMISSION_DENIED    -EACCES
 *   UNAUTHENTICATED      -EPERM
 *   RESOURCE_EXHAUSTED   -ENOSPC     (also -ENOMEM, -EMSGSIZE, -EDQUOT)
 *   FAILED_PRECONDITION  -ESTALE     (stale epoch, missing chunks)
 *   ABORTED              -ECANCELED
 *   UNAVAILABLE          -ECONNREFUSED (and other connection errors)
 *   DEADLINE_EXCEEDED    -ETIMEDOUT
 *   DATA_LOSS            -EBADMSG    (hash mismatch, corrupt record)
 *   UNIMPLEMENTED        -ENOSYS     (unknown method)
 *   INTERNAL             -EIO        (anything else)
 */
#ifndef CKPT_ERR_H
#define CKPT_ERR_H

#include "ckpt/v1/rpc.pb-c.h"

typedef Ckpt__V1__Code err_code;

/*
 * Reply.reason values (rpc.proto) that name the case of a code, for the
 * errors a program must tell apart; limits use LIMIT_REASON_PREFIX (limit.h).
 */
#define ERR_REASON_STALE_EPOCH "stale_epoch"       /* FAILED_PRECONDITION */
#define ERR_REASON_MISSING_CHUNKS "missing_chunks" /* FAILED_PRECONDITION */
#define ERR_REASON_UNAUTHENTICATED "unauthenticated"
#define ERR_REASON_FORBIDDEN "forbidden"

/* nng error (NNG_E*) -> negative errno. 0 stays 0. */
int err_from_nng(int nng_rv);
/* LMDB return code (MDB_* or errno) -> negative errno. 0 stays 0. */
int err_from_mdb(int mdb_rc);
/* Negative errno -> wire code. */
err_code err_to_code(int neg_errno);
/* Wire code -> negative errno (OK -> 0). Unknown codes -> -EIO. */
int err_from_code(err_code code);
/* "NOT_FOUND", ...; "UNKNOWN_CODE" for values outside the set. */
const char *err_code_name(err_code code);
/* strerror of a negative errno, thread-safe (static strings). */
const char *err_str(int neg_errno);

#endif
