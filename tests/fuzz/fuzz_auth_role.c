/*
 * auth_role_parse() of any bytes (a SAN URI from a peer's certificate):
 * never reads past len; what it accepts prints (auth_id_str) as the same
 * URI without its scheme and parses back to the same identity.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri, back[AUTH_ID_MAX + 5];
	struct auth_id id, again;
	int rv;

	/* An exact-size copy: ASan catches any read beyond len. */
	uri = malloc(size != 0 ? size : 1);
	if (uri == NULL)
		return 0;
	memcpy(uri, data, size);
	rv = auth_role_parse(uri, size, &id);
	if (rv != 0 && rv != -ENOENT && rv != -EINVAL)
		abort();
	if (rv == 0) {
		memcpy(back, "ckpt:", 5);
		auth_id_str(&id, back + 5, sizeof(back) - 5);
		if (strlen(back) != size || strncasecmp(back, uri, 5) != 0 ||
		    memcmp(back + 5, uri + 5, size - 5) != 0)
			abort();
		if (auth_role_parse(back, strlen(back), &again) != 0 || again.ai_role != id.ai_role ||
		    strcmp(again.ai_node, id.ai_node) != 0)
			abort();
	}
	free(uri);
	return 0;
}
