#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- roles ---- */

static const struct {
	const char *r_name;
	enum auth_role r_role;
} auth_roles[] = {
	{ "nas", AUTH_ROLE_NAS },
	{ "manager", AUTH_ROLE_MANAGER },
	{ "operator", AUTH_ROLE_OPERATOR },
};

#define AUTH_NODE_PREFIX "node:"

int
auth_role_parse(const char *uri, size_t len, struct auth_id *ret_id)
{
	const size_t plen = sizeof(AUTH_URI_PREFIX) - 1, nlen = sizeof(AUTH_NODE_PREFIX) - 1;
	struct auth_id id = { 0 };
	const char *r;
	size_t rlen;

	/* A URI scheme is case-insensitive (RFC 3986): "CKPT:nas" is ours too. */
	if (len < plen || strncasecmp(uri, AUTH_URI_PREFIX, plen) != 0)
		return -ENOENT;
	r = uri + plen;
	rlen = len - plen;
	for (size_t i = 0; i < sizeof(auth_roles) / sizeof(auth_roles[0]); i++) {
		if (rlen == strlen(auth_roles[i].r_name) && memcmp(r, auth_roles[i].r_name, rlen) == 0) {
			id.ai_role = auth_roles[i].r_role;
			*ret_id = id;
			return 0;
		}
	}
	if (rlen <= nlen || rlen - nlen > KEY_NAME_MAX || memcmp(r, AUTH_NODE_PREFIX, nlen) != 0)
		return -EINVAL;
	memcpy(id.ai_node, r + nlen, rlen - nlen);
	id.ai_node[rlen - nlen] = '\0';
	/* An embedded NUL ends the copy early: the lengths then differ. */
	if (strlen(id.ai_node) != rlen - nlen || key_name_check(id.ai_node) != 0)
		return -EINVAL;
	id.ai_role = AUTH_ROLE_NODE;
	*ret_id = id;
	return 0;
}

void
auth_id_str(const struct auth_id *id, char *buf, size_t len)
{
	const char *name = "?";

	if (id->ai_role == AUTH_ROLE_NODE) {
		snprintf(buf, len, "%s%s", AUTH_NODE_PREFIX, id->ai_node);
		return;
	}
	for (size_t i = 0; i < sizeof(auth_roles) / sizeof(auth_roles[0]); i++) {
		if (auth_roles[i].r_role == id->ai_role)
			name = auth_roles[i].r_name;
	}
	snprintf(buf, len, "%s", name);
}

void
auth_mask_str(unsigned mask, char *buf, size_t len)
{
	static const char *const names[] = { [AUTH_ROLE_NODE] = "node", [AUTH_ROLE_NAS] = "nas",
		[AUTH_ROLE_MANAGER] = "manager", [AUTH_ROLE_OPERATOR] = "operator" };
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned r = AUTH_ROLE_NODE; r <= AUTH_ROLE_OPERATOR && n < len; r++) {
		if (mask & (1u << r))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n != 0 ? ", " : "", names[r]);
	}
}

bool
auth_id_is_node(const struct auth_id *id, const char *node)
{
	return id->ai_role == AUTH_ROLE_NODE && node != NULL && strcmp(id->ai_node, node) == 0;
}

/* The one role among x's SAN URIs (see auth_cert_role()). */
static int
auth_x509_role(X509 *x, struct auth_id *ret_id, char *err, size_t errlen)
{
	GENERAL_NAMES *names;
	struct auth_id id = { 0 };
	int found = 0, rv = 0;

	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		struct auth_id one;
		const char *uri;
		int len, r;

		if (g->type != GEN_URI)
			continue;
		uri = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		r = auth_role_parse(uri, (size_t)len, &one);
		if (r == -ENOENT)
			continue;
		if (r != 0) {
			snprintf(err, errlen, "certificate names a malformed role '%.*s'",
			    len < 80 ? len : 80, uri);
			rv = -EINVAL;
			break;
		}
		if (++found > 1) {
			snprintf(err, errlen, "certificate names more than one ckpt role");
			rv = -EINVAL;
			break;
		}
		id = one;
	}
	GENERAL_NAMES_free(names);
	if (rv == 0 && found == 0) {
		snprintf(err, errlen, "certificate names no ckpt role (a SAN URI ckpt:node:<id>, "
				      "ckpt:nas, ckpt:manager or ckpt:operator)");
		rv = -ENOENT;
	}
	if (rv == 0)
		*ret_id = id;
	return rv;
}

/* Whether x names itself a node CA: a SAN URI AUTH_NODE_CA_URI (any case of "ckpt:"). */
static bool
auth_x509_is_node_ca(X509 *x)
{
	static const char mark[] = AUTH_NODE_CA_URI;
	const size_t plen = sizeof(AUTH_URI_PREFIX) - 1, mlen = sizeof(mark) - 1;
	GENERAL_NAMES *names;
	bool found = false;

	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const char *uri;

		if (g->type != GEN_URI)
			continue;
		uri = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		found = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) == mlen &&
		    strncasecmp(uri, mark, plen) == 0 &&
		    memcmp(uri + plen, &mark[plen], mlen - plen) == 0;
	}
	GENERAL_NAMES_free(names);
	return found;
}

/* One DER certificate, all of its len bytes. */
static X509 *
auth_x509_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (len == 0 || len > AUTH_CERT_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

int
auth_cert_role(const uint8_t *der, size_t len, struct auth_id *ret_id, char *err, size_t errlen)
{
	X509 *x = auth_x509_der(der, len);
	int rv;

	if (x == NULL) {
		snprintf(err, errlen, "not a DER certificate (%zu bytes)", len);
		return -EINVAL;
	}
	rv = auth_x509_role(x, ret_id, err, errlen);
	X509_free(x);
	return rv;
}

/* The first error OpenSSL queued, for a message; clears the queue. */
static const char *
auth_ossl_err(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, len);
	return buf;
}

/* ---- credentials ---- */

struct auth_cred {
	EVP_PKEY *ac_key;
	ProtobufCBinaryData ac_chain[AUTH_CHAIN_MAX];
	size_t ac_nchain;
	char ac_name[AUTH_ID_MAX];
};

void
auth_cred_free(struct auth_cred *c)
{
	if (c == NULL)
		return;
	EVP_PKEY_free(c->ac_key);
	for (size_t i = 0; i < c->ac_nchain; i++)
		OPENSSL_free(c->ac_chain[i].data);
	free(c);
}

int
auth_cred_load(const char *cert_file, const char *key_file, struct auth_cred **ret_cred,
    char *err, size_t errlen)
{
	struct auth_cred *c;
	struct auth_id id;
	char ebuf[160], why[AUTH_ERR_MAX];
	X509 *leaf = NULL, *x;
	BIO *bio;
	int rv = 0;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	bio = BIO_new_file(cert_file, "r");
	if (bio == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", cert_file, auth_ossl_err(ebuf, sizeof(ebuf)));
		rv = -ENOENT;
		goto out_free;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		unsigned char *der = NULL;
		int len;

		if (c->ac_nchain == AUTH_CHAIN_MAX) {
			X509_free(x);
			snprintf(err, errlen, "%s: more than %d certificates", cert_file, AUTH_CHAIN_MAX);
			rv = -E2BIG;
			break;
		}
		len = i2d_X509(x, &der);
		if (len <= 0 || (size_t)len > AUTH_CERT_MAX) {
			OPENSSL_free(der);
			X509_free(x);
			snprintf(err, errlen, "%s: a certificate of more than %u bytes", cert_file,
			    AUTH_CERT_MAX);
			rv = -E2BIG;
			break;
		}
		c->ac_chain[c->ac_nchain].data = der;
		c->ac_chain[c->ac_nchain].len = (size_t)len;
		c->ac_nchain++;
		if (leaf == NULL)
			leaf = x;
		else
			X509_free(x);
	}
	ERR_clear_error(); /* the read that ended the loop */
	BIO_free(bio);
	if (rv == 0 && leaf == NULL) {
		snprintf(err, errlen, "%s: no PEM certificate in it", cert_file);
		rv = -EINVAL;
	}
	if (rv != 0)
		goto out_leaf;
	rv = auth_x509_role(leaf, &id, why, sizeof(why));
	if (rv == 0) {
		auth_id_str(&id, c->ac_name, sizeof(c->ac_name));
	} else if (rv != -ENOENT) {
		snprintf(err, errlen, "%s: %s", cert_file, why);
		goto out_leaf;
	}
	rv = 0;
	bio = BIO_new_file(key_file, "r");
	if (bio == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", key_file, auth_ossl_err(ebuf, sizeof(ebuf)));
		rv = -ENOENT;
		goto out_leaf;
	}
	c->ac_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (c->ac_key == NULL) {
		snprintf(err, errlen, "%s: no unencrypted PEM private key: %s", key_file,
		    auth_ossl_err(ebuf, sizeof(ebuf)));
		rv = -EINVAL;
	} else if (X509_check_private_key(leaf, c->ac_key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s is not the key of the certificate in %s", key_file, cert_file);
		rv = -EINVAL;
	} else if (EVP_PKEY_get_size(c->ac_key) > (int)AUTH_SIG_MAX) {
		snprintf(err, errlen, "%s: key too large (signatures over %u bytes)", key_file,
		    AUTH_SIG_MAX);
		rv = -E2BIG;
	}
out_leaf:
	X509_free(leaf);
out_free:
	if (rv != 0) {
		auth_cred_free(c);
		return rv;
	}
	*ret_cred = c;
	return 0;
}

const ProtobufCBinaryData *
auth_cred_chain(const struct auth_cred *c, size_t *ret_n)
{
	*ret_n = c->ac_nchain;
	return c->ac_chain;
}

const char *
auth_cred_name(const struct auth_cred *c)
{
	return c->ac_name;
}

size_t
auth_signed_len(size_t audience_len)
{
	return sizeof(AUTH_LABEL) + AUTH_NONCE_LEN + audience_len; /* sizeof counts the 0x00 */
}

void
auth_signed_bytes(const uint8_t nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    uint8_t *buf)
{
	memcpy(buf, AUTH_LABEL, sizeof(AUTH_LABEL)); /* with its NUL: the 0x00 separator */
	memcpy(buf + sizeof(AUTH_LABEL), nonce, AUTH_NONCE_LEN);
	if (audience_len != 0)
		memcpy(buf + sizeof(AUTH_LABEL) + AUTH_NONCE_LEN, audience, audience_len);
}

/* The digest a key signs with: none for the EdDSA keys (they hash themselves). */
static const EVP_MD *
auth_md(const EVP_PKEY *key)
{
	int id = EVP_PKEY_get_id(key);
	return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
}

/* Signs tbs (tbs_len bytes) with c's key into sig (AUTH_SIG_MAX bytes). */
static int
auth_sign_tbs(const struct auth_cred *c, const uint8_t *tbs, size_t tbs_len, uint8_t *sig,
    size_t *ret_len)
{
	size_t len = AUTH_SIG_MAX;
	EVP_MD_CTX *ctx;
	int rv = -EIO;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, auth_md(c->ac_key), NULL, c->ac_key) == 1 &&
	    EVP_DigestSign(ctx, sig, &len, tbs, tbs_len) == 1) {
		*ret_len = len;
		rv = 0;
	}
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rv;
}

int
auth_sign(const struct auth_cred *c, const uint8_t nonce[AUTH_NONCE_LEN], const char *audience,
    size_t audience_len, uint8_t *sig, size_t *ret_len)
{
	size_t tbs_len = auth_signed_len(audience_len);
	uint8_t *tbs;
	int rv;

	tbs = malloc(tbs_len);
	if (tbs == NULL)
		return -ENOMEM;
	auth_signed_bytes(nonce, audience, audience_len, tbs);
	rv = auth_sign_tbs(c, tbs, tbs_len, sig, ret_len);
	free(tbs);
	return rv;
}

size_t
auth_server_signed_len(size_t audience_len)
{
	return sizeof(AUTH_SERVER_LABEL) + 2 * AUTH_NONCE_LEN + audience_len;
}

void
auth_server_signed_bytes(const uint8_t client_nonce[AUTH_NONCE_LEN],
    const uint8_t server_nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    uint8_t *buf)
{
	uint8_t *p = buf;

	memcpy(p, AUTH_SERVER_LABEL, sizeof(AUTH_SERVER_LABEL)); /* with its NUL: the 0x00 */
	p += sizeof(AUTH_SERVER_LABEL);
	memcpy(p, client_nonce, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	memcpy(p, server_nonce, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	if (audience_len != 0)
		memcpy(p, audience, audience_len);
}

int
auth_sign_server(const struct auth_cred *c, const uint8_t client_nonce[AUTH_NONCE_LEN],
    const uint8_t server_nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    uint8_t *sig, size_t *ret_len)
{
	size_t tbs_len = auth_server_signed_len(audience_len);
	uint8_t *tbs;
	int rv;

	tbs = malloc(tbs_len);
	if (tbs == NULL)
		return -ENOMEM;
	auth_server_signed_bytes(client_nonce, server_nonce, audience, audience_len, tbs);
	rv = auth_sign_tbs(c, tbs, tbs_len, sig, ret_len);
	free(tbs);
	return rv;
}

int
auth_nonce(uint8_t ret_nonce[AUTH_NONCE_LEN])
{
	if (RAND_bytes(ret_nonce, AUTH_NONCE_LEN) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

/* ---- verification ---- */

struct auth_verifier {
	X509_STORE *av_store;
};

int
auth_verifier_new(const char *ca_file, struct auth_verifier **ret_v, char *err, size_t errlen)
{
	struct auth_verifier *v;
	char ebuf[160];

	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	v->av_store = X509_STORE_new();
	if (v->av_store == NULL) {
		free(v);
		return -ENOMEM;
	}
	if (X509_STORE_load_file(v->av_store, ca_file) != 1) {
		snprintf(err, errlen, "%s: no CA certificate read: %s", ca_file,
		    auth_ossl_err(ebuf, sizeof(ebuf)));
		auth_verifier_free(v);
		return -EINVAL;
	}
	*ret_v = v;
	return 0;
}

void
auth_verifier_free(struct auth_verifier *v)
{
	if (v == NULL)
		return;
	X509_STORE_free(v->av_store);
	free(v);
}

/* auth_verify() over the signed bytes tbs, whoever made them. */
static int
auth_verify_tbs(const struct auth_verifier *v, const ProtobufCBinaryData *chain, size_t n,
    const uint8_t *tbs, size_t tbs_len, const uint8_t *sig, size_t sig_len, time_t at,
    struct auth_id *ret_id, char *err, size_t errlen)
{
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *sctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	X509 *leaf = NULL;
	struct auth_id id;
	char why[AUTH_ERR_MAX];
	int rv = -EPERM;

	if (n == 0 || n > AUTH_CHAIN_MAX) {
		snprintf(err, errlen, "%zu certificates in the proof (1 to %d)", n, AUTH_CHAIN_MAX);
		return -EPERM;
	}
	if (sig_len == 0 || sig_len > AUTH_SIG_MAX) {
		snprintf(err, errlen, "a signature of %zu bytes (1 to %u)", sig_len, AUTH_SIG_MAX);
		return -EPERM;
	}
	leaf = auth_x509_der(chain[0].data, chain[0].len);
	untrusted = sk_X509_new_null();
	if (leaf == NULL) {
		snprintf(err, errlen, "the first certificate is not DER (%zu bytes)", chain[0].len);
		goto out;
	}
	if (untrusted == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t i = 1; i < n; i++) {
		X509 *x = auth_x509_der(chain[i].data, chain[i].len);
		if (x == NULL) {
			snprintf(err, errlen, "certificate %zu of the chain is not DER", i);
			goto out;
		}
		if (sk_X509_push(untrusted, x) <= 0) {
			X509_free(x);
			rv = -ENOMEM;
			goto out;
		}
	}
	sctx = X509_STORE_CTX_new();
	if (sctx == NULL || X509_STORE_CTX_init(sctx, v->av_store, leaf, untrusted) != 1) {
		rv = -ENOMEM;
		goto out;
	}
	if (at != 0)
		X509_STORE_CTX_set_time(sctx, 0, at);
	if (X509_verify_cert(sctx) != 1) {
		snprintf(err, errlen, "certificate not trusted: %s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
		goto out;
	}
	rv = auth_x509_role(leaf, &id, why, sizeof(why));
	if (rv != 0) {
		snprintf(err, errlen, "%s", why);
		rv = -EPERM;
		goto out;
	}
	/*
	 * A node CA (deploy/certs.sh --node-ca) anywhere above the leaf in the
	 * verified path issues node identities only: its key sits in every
	 * node's init container, and must not make a manager or an operator.
	 */
	if (id.ai_role != AUTH_ROLE_NODE) {
		STACK_OF(X509) *path = X509_STORE_CTX_get0_chain(sctx);
		for (int i = 1; path != NULL && i < sk_X509_num(path); i++) {
			if (auth_x509_is_node_ca(sk_X509_value(path, i))) {
				char who[AUTH_ID_MAX];
				auth_id_str(&id, who, sizeof(who));
				snprintf(err, errlen, "certificate for role %s was issued by a node CA "
				    "(%s): a node CA issues only ckpt:node:<id>", who, AUTH_NODE_CA_URI);
				rv = -EPERM;
				goto out;
			}
		}
	}
	mctx = EVP_MD_CTX_new();
	if (mctx == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(mctx, NULL, auth_md(X509_get0_pubkey(leaf)), NULL,
	        X509_get0_pubkey(leaf)) != 1 ||
	    EVP_DigestVerify(mctx, sig, sig_len, tbs, tbs_len) != 1) {
		snprintf(err, errlen, "signature does not verify with the certificate's key");
		rv = -EPERM;
		goto out;
	}
	*ret_id = id;
	rv = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mctx);
	X509_STORE_CTX_free(sctx);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	return rv;
}

int
auth_verify(const struct auth_verifier *v, const ProtobufCBinaryData *chain, size_t n,
    const uint8_t nonce[AUTH_NONCE_LEN], const char *audience, size_t audience_len,
    const uint8_t *sig, size_t sig_len, time_t at, struct auth_id *ret_id, char *err,
    size_t errlen)
{
	size_t tbs_len = auth_signed_len(audience_len);
	uint8_t *tbs;
	int rv;

	tbs = malloc(tbs_len);
	if (tbs == NULL)
		return -ENOMEM;
	auth_signed_bytes(nonce, audience, audience_len, tbs);
	rv = auth_verify_tbs(v, chain, n, tbs, tbs_len, sig, sig_len, at, ret_id, err, errlen);
	free(tbs);
	return rv;
}

int
auth_verify_server(const struct auth_verifier *v, const ProtobufCBinaryData *chain, size_t n,
    const uint8_t client_nonce[AUTH_NONCE_LEN], const uint8_t server_nonce[AUTH_NONCE_LEN],
    const char *audience, size_t audience_len, const uint8_t *sig, size_t sig_len, time_t at,
    struct auth_id *ret_id, char *err, size_t errlen)
{
	size_t tbs_len = auth_server_signed_len(audience_len);
	char name[AUTH_ID_MAX];
	struct auth_id id;
	uint8_t *tbs;
	int rv;

	tbs = malloc(tbs_len);
	if (tbs == NULL)
		return -ENOMEM;
	auth_server_signed_bytes(client_nonce, server_nonce, audience, audience_len, tbs);
	rv = auth_verify_tbs(v, chain, n, tbs, tbs_len, sig, sig_len, at, &id, err, errlen);
	free(tbs);
	if (rv != 0)
		return rv;
	auth_id_str(&id, name, sizeof(name));
	if (audience_len != strlen(name) || memcmp(audience, name, audience_len) != 0) {
		snprintf(err, errlen, "certificate proves identity %s but the server claims '%.*s'",
		    name, (int)(audience_len < AUTH_ID_MAX ? audience_len : AUTH_ID_MAX), audience);
		return -EPERM;
	}
	*ret_id = id;
	return 0;
}

/* ---- connections ---- */

#define AUTH_PIPES_BUCKETS 256u

struct auth_pipe {
	uint32_t ap_pipe;
	bool ap_nonce_set;
	bool ap_has_id;
	bool ap_refused;          /* a refusal was reported */
	uint8_t ap_nonce[AUTH_NONCE_LEN];
	struct auth_id ap_id;
	struct auth_pipe *ap_next;
};

struct auth_pipes {
	pthread_mutex_t at_mu; /* guards everything below */
	struct auth_pipe *at_buckets[AUTH_PIPES_BUCKETS];
	size_t at_count;
};

int
auth_pipes_new(struct auth_pipes **ret_t)
{
	struct auth_pipes *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->at_mu, NULL);
	*ret_t = t;
	return 0;
}

void
auth_pipes_free(struct auth_pipes *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < AUTH_PIPES_BUCKETS; i++) {
		while (t->at_buckets[i] != NULL) {
			struct auth_pipe *p = t->at_buckets[i];
			t->at_buckets[i] = p->ap_next;
			free(p);
		}
	}
	pthread_mutex_destroy(&t->at_mu);
	free(t);
}

/* The slot that points at pipe's entry (or at NULL). Under at_mu. */
static struct auth_pipe **
auth_pipes_slot(struct auth_pipes *t, uint32_t pipe)
{
	struct auth_pipe **pp = &t->at_buckets[(pipe * 2654435761u) % AUTH_PIPES_BUCKETS];

	while (*pp != NULL && (*pp)->ap_pipe != pipe)
		pp = &(*pp)->ap_next;
	return pp;
}

int
auth_pipes_add(struct auth_pipes *t, uint32_t pipe)
{
	struct auth_pipe **pp, *p;
	int rv = 0;

	pthread_mutex_lock(&t->at_mu);
	pp = auth_pipes_slot(t, pipe);
	if (*pp == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL) {
			rv = -ENOMEM;
		} else {
			p->ap_pipe = pipe;
			*pp = p;
			t->at_count++;
		}
	}
	pthread_mutex_unlock(&t->at_mu);
	return rv;
}

void
auth_pipes_drop(struct auth_pipes *t, uint32_t pipe)
{
	struct auth_pipe **pp, *p;

	pthread_mutex_lock(&t->at_mu);
	pp = auth_pipes_slot(t, pipe);
	p = *pp;
	if (p != NULL) {
		*pp = p->ap_next;
		t->at_count--;
	}
	pthread_mutex_unlock(&t->at_mu);
	free(p);
}

int
auth_pipes_challenge(struct auth_pipes *t, uint32_t pipe, uint8_t ret_nonce[AUTH_NONCE_LEN])
{
	uint8_t nonce[AUTH_NONCE_LEN];
	struct auth_pipe *p;
	int rv = 0;

	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	pthread_mutex_lock(&t->at_mu);
	p = *auth_pipes_slot(t, pipe);
	if (p == NULL) {
		rv = -ENOENT;
	} else {
		memcpy(p->ap_nonce, nonce, sizeof(nonce));
		p->ap_nonce_set = true;
	}
	pthread_mutex_unlock(&t->at_mu);
	if (rv == 0)
		memcpy(ret_nonce, nonce, sizeof(nonce));
	return rv;
}

int
auth_pipes_take_nonce(struct auth_pipes *t, uint32_t pipe, const uint8_t *nonce, size_t len)
{
	struct auth_pipe *p;
	int rv = -ESTALE;

	pthread_mutex_lock(&t->at_mu);
	p = *auth_pipes_slot(t, pipe);
	if (p != NULL && p->ap_nonce_set) {
		/* Not secret once sent: a plain comparison is enough. */
		if (len == AUTH_NONCE_LEN && memcmp(p->ap_nonce, nonce, len) == 0)
			rv = 0;
		p->ap_nonce_set = false;
		memset(p->ap_nonce, 0, sizeof(p->ap_nonce));
	}
	pthread_mutex_unlock(&t->at_mu);
	return rv;
}

int
auth_pipes_bind(struct auth_pipes *t, uint32_t pipe, const struct auth_id *id)
{
	struct auth_pipe *p;
	int rv = -ENOENT;

	pthread_mutex_lock(&t->at_mu);
	p = *auth_pipes_slot(t, pipe);
	if (p != NULL) {
		p->ap_id = *id;
		p->ap_has_id = true;
		p->ap_refused = false; /* a new identity: its first refusal is news */
		rv = 0;
	}
	pthread_mutex_unlock(&t->at_mu);
	return rv;
}

int
auth_pipes_get(struct auth_pipes *t, uint32_t pipe, struct auth_id *ret_id)
{
	struct auth_pipe *p;
	int rv = -ENOENT;

	pthread_mutex_lock(&t->at_mu);
	p = *auth_pipes_slot(t, pipe);
	if (p != NULL && p->ap_has_id) {
		*ret_id = p->ap_id;
		rv = 0;
	}
	pthread_mutex_unlock(&t->at_mu);
	return rv;
}

bool
auth_pipes_first_refusal(struct auth_pipes *t, uint32_t pipe)
{
	struct auth_pipe *p;
	bool first = false;

	pthread_mutex_lock(&t->at_mu);
	p = *auth_pipes_slot(t, pipe);
	if (p != NULL && !p->ap_refused) {
		p->ap_refused = true;
		first = true;
	}
	pthread_mutex_unlock(&t->at_mu);
	return first;
}

size_t
auth_pipes_count(struct auth_pipes *t)
{
	size_t n;

	pthread_mutex_lock(&t->at_mu);
	n = t->at_count;
	pthread_mutex_unlock(&t->at_mu);
	return n;
}
