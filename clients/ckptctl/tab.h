/*
 * tab: aligned text tables for ckptctl's human output.
 *
 * Columns are separated by two spaces and padded to their widest cell; the
 * last column is not padded, so lines carry no trailing blanks. Cells are
 * copied (control characters become '?'); an empty cell prints as "-".
 */
#ifndef CKPTCTL_TAB_H
#define CKPTCTL_TAB_H

#include <stddef.h>
#include <stdio.h>

#define TAB_COLS_MAX 8

struct tab;

int tab_new(size_t ncols, const char *const *headers, struct tab **ret_tab);
/* Adds one row of ncols cells. 0 or -ENOMEM. */
int tab_add(struct tab *t, const char *const *cells);
/* 0 or a negative errno from writing. */
int tab_print(const struct tab *t, FILE *out);
void tab_free(struct tab *t);

#endif
