/* SPDX-License-Identifier: Apache-2.0 */
/*
 * broadcast — broadcast masks against client names, differentially: the
 * broker's matcher against a naive reference written here from PROTOCOL.md
 * §4 (names split on '.', '*' matches one or more remaining levels, '?'
 * exactly one level, anything else literally).
 *
 * Input: lines; a line starting with 'M' is a mask, others are names;
 * every mask is checked against every name, and every name it matches
 * must start with its literal prefix (bus__bcast_prefix: the broker
 * looks only at the sorted names in that range).
 */
#include "fuzz.h"
#include "../broker/core/internal.h"

#include <string.h>

#define ITEMS_MAX 32
#define LEVELS_MAX 400


static bool naive(const char *mask, size_t mn, const char *name, size_t nn)
{
	static struct fz_lv m[LEVELS_MAX], t[LEVELS_MAX];
	size_t mk = fz_split(mask, mn, '.', m, LEVELS_MAX);
	size_t tk = fz_split(name, nn, '.', t, LEVELS_MAX);
	for (size_t i = 0; i < mk; i++) {
		if (m[i].n == 1 && m[i].p[0] == '*')
			return tk > i;
		if (i >= tk)
			return false;
		if (m[i].n == 1 && m[i].p[0] == '?')
			continue;
		if (m[i].n != t[i].n || memcmp(m[i].p, t[i].p, t[i].n))
			return false;
	}
	return mk == tk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	const char *masks[ITEMS_MAX], *names[ITEMS_MAX];
	size_t ml[ITEMS_MAX], nl_[ITEMS_MAX];
	int nm = 0, nn = 0;
	const char *s = (const char *)data, *end = s + size;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = (size_t)((nl ? nl : end) - s);
		const char *line = s;
		s += n + 1;
		if (n > 300 || memchr(line, 0, n))
			continue;
		if (n && line[0] == 'M' && nm < ITEMS_MAX) {
			masks[nm] = line + 1;
			ml[nm++] = n - 1;
		} else if (nn < ITEMS_MAX) {
			names[nn] = line;
			nl_[nn++] = n;
		}
	}
	for (int i = 0; i < nm; i++)
		for (int j = 0; j < nn; j++) {
			bool core = bus__bcast_match(masks[i], ml[i], names[j],
			                             nl_[j]);
			bool ref = naive(masks[i], ml[i], names[j], nl_[j]);
			FUZZ_CHECK(core == ref, "mask '%.*s' name '%.*s': %d",
			           (int)ml[i], masks[i], (int)nl_[j], names[j],
			           core);
			/* the broker only looks at names that start with the
			 * mask's literal prefix: every match must */
			size_t pl = bus__bcast_prefix(masks[i], ml[i]);
			FUZZ_CHECK(pl <= ml[i], "prefix past the mask");
			FUZZ_CHECK(!ref || (nl_[j] >= pl &&
			                    !memcmp(names[j], masks[i], pl)),
			           "mask '%.*s' matches '%.*s' outside its "
			           "prefix of %zu", (int)ml[i], masks[i],
			           (int)nl_[j], names[j], pl);
		}
	return 0;
}
