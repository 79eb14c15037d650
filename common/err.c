#include "err.h"

#include <errno.h>
#include <string.h>

#include <lmdb.h>
#include <nng/nng.h>

int
err_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_EINTR:
		return -EINTR;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EINVAL:
		return -EINVAL;
	case NNG_EBUSY:
		return -EBUSY;
	case NNG_ETIMEDOUT:
		return -ETIMEDOUT;
	case NNG_ECONNREFUSED:
		return -ECONNREFUSED;
	case NNG_ECLOSED:
		return -EPIPE;
	case NNG_EAGAIN:
		return -EAGAIN;
	case NNG_ENOTSUP:
		return -ENOTSUP;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_ESTATE:
		return -EPROTO;
	case NNG_ENOENT:
		return -ENOENT;
	case NNG_EPROTO:
		return -EPROTO;
	case NNG_EUNREACHABLE:
		return -EHOSTUNREACH;
	case NNG_EADDRINVAL:
		return -EDESTADDRREQ;
	case NNG_EPERM:
		return -EPERM;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	case NNG_ECONNABORTED:
		return -ECONNABORTED;
	case NNG_ECONNRESET:
		return -ECONNRESET;
	case NNG_ECANCELED:
		return -ECANCELED;
	case NNG_ENOFILES:
		return -EMFILE;
	case NNG_ENOSPC:
		return -ENOSPC;
	case NNG_EEXIST:
		return -EEXIST;
	case NNG_EREADONLY:
		return -EROFS;
	case NNG_EWRITEONLY:
		return -EBADF;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
		return -EACCES;
	case NNG_ENOARG:
	case NNG_EAMBIGUOUS:
	case NNG_EBADTYPE:
		return -EINVAL;
	case NNG_ECONNSHUT:
		return -ESHUTDOWN;
	default:
		if (rv & NNG_ESYSERR)
			return -(rv & ~NNG_ESYSERR);
		return -EIO;
	}
}

int
err_from_mdb(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
	case MDB_DBS_FULL:
	case MDB_READERS_FULL:
		return -ENOSPC;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return -EBADMSG;
	case MDB_MAP_RESIZED:
		return -EAGAIN;
	case MDB_BAD_VALSIZE:
		return -EMSGSIZE;
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
	case MDB_BAD_DBI:
	case MDB_INCOMPATIBLE:
	case MDB_PANIC:
	case MDB_TLS_FULL:
		return -EIO;
	default:
		if (rc > 0)
			return -rc; /* LMDB passes errno through */
		return -EIO;
	}
}

err_code
err_to_code(int e)
{
	switch (-e) {
	case 0:
		return CKPT__V1__CODE__OK;
	case EINVAL:
	case EDESTADDRREQ:
	case E2BIG:
	case ERANGE:
	case EPROTO:
		return CKPT__V1__CODE__INVALID_ARGUMENT;
	case ENOENT:
		return CKPT__V1__CODE__NOT_FOUND;
	case EEXIST:
		return CKPT__V1__CODE__ALREADY_EXISTS;
	case EACCES:
		return CKPT__V1__CODE__PERMISSION_DENIED;
	case EPERM:
		return CKPT__V1__CODE__UNAUTHENTICATED;
	case ENOSPC:
	case ENOMEM:
	case EMSGSIZE:
	case EDQUOT:
	case EMFILE:
		return CKPT__V1__CODE__RESOURCE_EXHAUSTED;
	case ESTALE:
	case ENOKEY: /* nas: sealed under a key the NAS was not given */
	case EMEDIUMTYPE: /* a record of another kind than asked for */
	case EXDEV: /* nasc: a NAS list naming different stores */
		return CKPT__V1__CODE__FAILED_PRECONDITION;
	case ECANCELED:
		return CKPT__V1__CODE__ABORTED;
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENOTCONN:
	case EPIPE:
	case ESHUTDOWN:
	case EAGAIN:
	case EBUSY:
		return CKPT__V1__CODE__UNAVAILABLE;
	case ETIMEDOUT:
		return CKPT__V1__CODE__DEADLINE_EXCEEDED;
	case EBADMSG:
		return CKPT__V1__CODE__DATA_LOSS;
	case ENOSYS:
	case ENOTSUP:
		return CKPT__V1__CODE__UNIMPLEMENTED;
	default:
		return CKPT__V1__CODE__INTERNAL;
	}
}

int
err_from_code(err_code code)
{
	switch (code) {
	case CKPT__V1__CODE__OK:
		return 0;
	case CKPT__V1__CODE__CANCELLED:
	case CKPT__V1__CODE__ABORTED:
		return -ECANCELED;
	case CKPT__V1__CODE__INVALID_ARGUMENT:
	case CKPT__V1__CODE__OUT_OF_RANGE:
		return -EINVAL;
	case CKPT__V1__CODE__DEADLINE_EXCEEDED:
		return -ETIMEDOUT;
	case CKPT__V1__CODE__NOT_FOUND:
		return -ENOENT;
	case CKPT__V1__CODE__ALREADY_EXISTS:
		return -EEXIST;
	case CKPT__V1__CODE__PERMISSION_DENIED:
		return -EACCES;
	case CKPT__V1__CODE__RESOURCE_EXHAUSTED:
		return -ENOSPC;
	case CKPT__V1__CODE__FAILED_PRECONDITION:
		return -ESTALE;
	case CKPT__V1__CODE__UNIMPLEMENTED:
		return -ENOSYS;
	case CKPT__V1__CODE__UNAVAILABLE:
		return -ECONNREFUSED;
	case CKPT__V1__CODE__DATA_LOSS:
		return -EBADMSG;
	case CKPT__V1__CODE__UNAUTHENTICATED:
		return -EPERM;
	default:
		return -EIO;
	}
}

const char *
err_code_name(err_code code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&ckpt__v1__code__descriptor, (int)code);
	return v != NULL ? v->name : "UNKNOWN_CODE";
}

const char *
err_str(int e)
{
	/* strerrordesc_np is glibc's thread-safe table lookup. */
	const char *s = strerrordesc_np(e < 0 ? -e : e);
	return s != NULL ? s : "Unknown error";
}
