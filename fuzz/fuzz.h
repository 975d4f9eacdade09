/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz.h — shared by the harnesses: the libFuzzer entry point (AFL++ runs
 * it in persistent mode through its driver, libFuzzer directly, and
 * fuzz/replay.c replays files through it) and a reader for structured
 * inputs. A harness reports a broken property by aborting (FUZZ_CHECK).
 */
#ifndef BUS_FUZZ_H
#define BUS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__,       \
			        __LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/* Consumes an input front to back; reads past the end give zeros. */
struct fz {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_more(const struct fz *f) { return f->n > 0; }

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t lo = fz_u8(f);
	return (uint16_t)(lo | (uint16_t)fz_u8(f) << 8);
}

/* Up to max bytes (fewer at the end); returns how many. */
static inline size_t fz_bytes(struct fz *f, size_t max, const uint8_t **out)
{
	size_t k = max < f->n ? max : f->n;
	*out = f->p;
	f->p += k;
	f->n -= k;
	return k;
}

/* Splits s on sep into at most max levels (an empty string is one level);
 * the naive reference matchers of topic.c and broadcast.c use it. */
struct fz_lv {
	const char *p;
	size_t n;
};

static inline size_t fz_split(const char *s, size_t n, char sep,
                              struct fz_lv *out, size_t max)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= n; i++)
		if (i == n || s[i] == sep) {
			if (k == max)
				return k;
			out[k++] = (struct fz_lv){s + start, i - start};
			start = i + 1;
		}
	return k;
}

#endif
