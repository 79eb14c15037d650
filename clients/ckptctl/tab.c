#include "tab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tab {
	size_t t_ncols;
	size_t t_nrows;   /* including the header row */
	size_t t_cap;     /* rows allocated */
	char **t_cells;   /* t_nrows * t_ncols */
	size_t t_width[TAB_COLS_MAX];
};

static char *
tab_cell_dup(const char *s)
{
	size_t n;
	char *d;

	if (s == NULL || s[0] == '\0')
		s = "-";
	n = strlen(s);
	d = malloc(n + 1);
	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	d[n] = '\0';
	return d;
}

int
tab_add(struct tab *t, const char *const *cells)
{
	char **row;

	if (t->t_nrows == t->t_cap) {
		size_t cap = t->t_cap ? 2 * t->t_cap : 16;
		char **c = realloc(t->t_cells, cap * t->t_ncols * sizeof(*c));
		if (c == NULL)
			return -ENOMEM;
		t->t_cells = c;
		t->t_cap = cap;
	}
	row = &t->t_cells[t->t_nrows * t->t_ncols];
	for (size_t i = 0; i < t->t_ncols; i++) {
		row[i] = tab_cell_dup(cells[i]);
		if (row[i] == NULL) {
			while (i-- > 0)
				free(row[i]);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < t->t_ncols; i++) {
		size_t w = strlen(row[i]);
		if (w > t->t_width[i])
			t->t_width[i] = w;
	}
	t->t_nrows++;
	return 0;
}

int
tab_new(size_t ncols, const char *const *headers, struct tab **ret_tab)
{
	struct tab *t;
	int rv;

	if (ncols == 0 || ncols > TAB_COLS_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->t_ncols = ncols;
	rv = tab_add(t, headers);
	if (rv != 0) {
		tab_free(t);
		return rv;
	}
	*ret_tab = t;
	return 0;
}

int
tab_print(const struct tab *t, FILE *out)
{
	for (size_t r = 0; r < t->t_nrows; r++) {
		char *const *row = &t->t_cells[r * t->t_ncols];
		for (size_t i = 0; i < t->t_ncols; i++) {
			if (i + 1 < t->t_ncols)
				fprintf(out, "%-*s  ", (int)t->t_width[i], row[i]);
			else
				fprintf(out, "%s\n", row[i]);
		}
	}
	return ferror(out) ? -EIO : 0;
}

void
tab_free(struct tab *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->t_nrows * t->t_ncols; i++)
		free(t->t_cells[i]);
	free(t->t_cells);
	free(t);
}
