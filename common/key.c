#include "key.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
key_name_check(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return -EINVAL;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (n >= KEY_NAME_MAX)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	return n == 0 ? -EINVAL : 0;
}

int
key_prefix(const char *node, const char *component, uint8_t *buf, size_t *ret_len)
{
	size_t n, m = 0;

	if (key_name_check(node) != 0 || (component != NULL && key_name_check(component) != 0))
		return -EINVAL;
	n = strlen(node);
	memcpy(buf, node, n + 1);
	if (component != NULL) {
		m = strlen(component);
		memcpy(buf + n + 1, component, m + 1);
		m++;
	}
	*ret_len = n + 1 + m;
	return 0;
}

int
key_encode(const char *node, const char *component, uint64_t seq, uint8_t *buf, size_t *ret_len)
{
	size_t n;
	int rv;

	if (component == NULL)
		return -EINVAL;
	rv = key_prefix(node, component, buf, &n);
	if (rv != 0)
		return rv;
	for (int i = 0; i < 8; i++)
		buf[n + i] = (uint8_t)(seq >> (56 - 8 * i));
	*ret_len = n + 8;
	return 0;
}

int
key_decode(const uint8_t *key, size_t len, char *ret_node, char *ret_component, uint64_t *ret_seq)
{
	const uint8_t *z1, *z2;
	size_t n1, n2;
	uint64_t seq = 0;

	if (len < 4 + 8 || len > KEY_MAX)
		return -EINVAL;
	z1 = memchr(key, 0, len - 8);
	if (z1 == NULL)
		return -EINVAL;
	n1 = (size_t)(z1 - key);
	z2 = memchr(z1 + 1, 0, len - 8 - n1 - 1);
	if (z2 == NULL || (size_t)(z2 - key) != len - 9)
		return -EINVAL;
	n2 = (size_t)(z2 - z1 - 1);
	if (n1 == 0 || n2 == 0 || n1 > KEY_NAME_MAX || n2 > KEY_NAME_MAX)
		return -EINVAL;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | key[len - 8 + i];
	memcpy(ret_node, key, n1 + 1);
	memcpy(ret_component, z1 + 1, n2 + 1);
	/* A damaged store can hold any bytes: only names that key_encode() writes. */
	if (key_name_check(ret_node) != 0 || key_name_check(ret_component) != 0)
		return -EINVAL;
	*ret_seq = seq;
	return 0;
}

int
key_parse_ref(const char *ref, char *ret_node, char *ret_component, uint64_t *ret_seq)
{
	char node[KEY_NAME_MAX + 1], comp[KEY_NAME_MAX + 1];
	const char *slash = strchr(ref, '/'), *at;
	size_t n, m;
	uint64_t seq = 0;

	if (slash == NULL)
		return -EINVAL;
	n = (size_t)(slash - ref);
	at = strchr(slash + 1, '@');
	m = at != NULL ? (size_t)(at - slash - 1) : strlen(slash + 1);
	if (n == 0 || n > KEY_NAME_MAX || m == 0 || m > KEY_NAME_MAX)
		return -EINVAL;
	memcpy(node, ref, n);
	node[n] = '\0';
	memcpy(comp, slash + 1, m);
	comp[m] = '\0';
	if (key_name_check(node) != 0 || key_name_check(comp) != 0)
		return -EINVAL;
	if (at != NULL) {
		char *end;
		if (at[1] < '0' || at[1] > '9')
			return -EINVAL;
		errno = 0;
		seq = strtoull(at + 1, &end, 10);
		if (errno != 0 || *end != '\0' || seq == 0)
			return -EINVAL;
	}
	memcpy(ret_node, node, n + 1);
	memcpy(ret_component, comp, m + 1);
	*ret_seq = seq;
	return 0;
}
