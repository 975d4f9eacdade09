/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topic — subscription masks and topics, differentially: the broker's level
 * trie and its mask matcher must agree with a deliberately naive reference
 * written here from PROTOCOL.md §4 (split on '/', '+' one level, '#' one or
 * more remaining levels, '#' ends a mask, '*' = '+' when star_is_plus,
 * nothing else special). Any disagreement aborts; so does a walk that
 * enters more nodes than the trie has, and an exclusion check
 * (bus__trie_any) that disagrees with "some mask matches", and a mask said
 * to cover another (bus__mask_covers) that misses a topic the other matches.
 *
 * Input: lines ('\n'); the first byte's bit 0 is star_is_plus; a line
 * starting with 'M' is a mask (the rest), 'R' removes the mask of that
 * text again, anything else is a topic.
 */
#include "fuzz.h"
#include "../broker/core/internal.h"

#include <string.h>

#define MASKS_MAX 32
#define TOPICS_MAX 32
#define LINE_MAX_ 300
#define LEVELS_MAX 1200


static bool is(const struct fz_lv *l, const char *lit)
{
	return l->n == strlen(lit) && !memcmp(l->p, lit, l->n);
}

static bool naive_match(const char *mask, size_t mn, const char *topic,
                        size_t tn, bool star_is_plus)
{
	static struct fz_lv m[LEVELS_MAX], t[LEVELS_MAX];
	size_t mk = fz_split(mask, mn, '/', m, LEVELS_MAX);
	size_t tk = fz_split(topic, tn, '/', t, LEVELS_MAX);
	for (size_t i = 0; i < mk; i++) {
		if (is(&m[i], "#"))
			return tk > i; /* one or more remaining levels */
		if (i >= tk)
			return false;
		bool any = is(&m[i], "+") || (star_is_plus && is(&m[i], "*"));
		if (!any && !(m[i].n == t[i].n && !memcmp(m[i].p, t[i].p, t[i].n)))
			return false;
	}
	return mk == tk;
}

struct mask {
	char norm[LINE_MAX_ + 1];
	size_t nlen;
	char raw[LINE_MAX_ + 1];
	size_t rlen;
	bool live;
};

static struct mask masks[MASKS_MAX];
static int nmasks;
static struct bus_conn *fake(int i) { return (struct bus_conn *)&masks[i]; }

struct seen {
	bool hit[MASKS_MAX];
};

static void visit(struct bus_conn *c, void *arg)
{
	struct seen *s = arg;
	int i = (int)((struct mask *)c - masks);
	FUZZ_CHECK(i >= 0 && i < nmasks && masks[i].live,
	           "the trie reported mask %d, which it does not hold", i);
	s->hit[i] = true;
}

static void compare(struct bus_trie *t, const char *topic, size_t tn,
                    bool star)
{
	struct seen s = {{0}};
	uint64_t v0 = t->visits;
	bus__trie_match(t, topic, tn, visit, &s);
	/* a walk enters each node at most once */
	FUZZ_CHECK(t->visits - v0 <= t->nodes + 1,
	           "a walk entered %llu nodes of %llu",
	           (unsigned long long)(t->visits - v0),
	           (unsigned long long)t->nodes + 1);
	bool any_ref = false;
	for (int i = 0; i < nmasks; i++) {
		if (!masks[i].live)
			continue;
		bool ref = naive_match(masks[i].raw, masks[i].rlen, topic, tn, star);
		bool core = bus__mask_match(masks[i].norm, masks[i].nlen, topic, tn);
		FUZZ_CHECK(core == ref, "bus__mask_match('%.*s', '%.*s') = %d",
		           (int)masks[i].nlen, masks[i].norm, (int)tn, topic, core);
		FUZZ_CHECK(s.hit[i] == ref, "trie: mask '%.*s' topic '%.*s': %d",
		           (int)masks[i].rlen, masks[i].raw, (int)tn, topic,
		           s.hit[i]);
		any_ref |= ref;
		/* a cover matches whatever it covers matches */
		for (int j = 0; ref && j < nmasks; j++) {
			uint64_t steps = 0;
			if (!masks[j].live ||
			    !bus__mask_covers(masks[j].norm, masks[j].nlen,
			                      masks[i].norm, masks[i].nlen, &steps))
				continue;
			FUZZ_CHECK(bus__mask_match(masks[j].norm, masks[j].nlen,
			                           topic, tn),
			           "'%.*s' covers '%.*s' but not on '%.*s'",
			           (int)masks[j].nlen, masks[j].norm,
			           (int)masks[i].nlen, masks[i].norm, (int)tn, topic);
		}
	}
	/* the exclusion check: "does any mask match", stopping early */
	FUZZ_CHECK(bus__trie_any(t, topic, tn) == any_ref,
	           "bus__trie_any('%.*s') disagrees", (int)tn, topic);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	bool star = data[0] & 1;
	struct bus_allocator a = {0};
	struct bus_trie t;
	memset(&t, 0, sizeof(t));
	nmasks = 0;
	const char *topics[TOPICS_MAX];
	size_t tlen[TOPICS_MAX];
	int ntopics = 0;
	const char *s = (const char *)data + 1, *end = (const char *)data + size;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = (size_t)((nl ? nl : end) - s);
		const char *line = s;
		s += n + 1;
		if (n > LINE_MAX_ || memchr(line, 0, n))
			continue; /* NUL cannot be inside a topic on the wire */
		if (n && line[0] == 'M' && nmasks < MASKS_MAX) {
			struct mask *m = &masks[nmasks];
			m->rlen = n - 1;
			memcpy(m->raw, line + 1, n - 1);
			m->nlen = bus__mask_normalize(line + 1, n - 1, star, m->norm);
			/* the core keeps one entry per client and mask: so do we */
			bool dup = false;
			for (int i = 0; i < nmasks; i++)
				dup |= masks[i].live && masks[i].nlen == m->nlen &&
				       !memcmp(masks[i].norm, m->norm, m->nlen);
			if (dup)
				continue;
			FUZZ_CHECK(bus__trie_add(&a, &t, m->norm, m->nlen,
			                         fake(nmasks)) == 0,
			           "trie add");
			m->live = true;
			nmasks++;
		} else if (n && line[0] == 'R') {
			for (int i = 0; i < nmasks; i++)
				if (masks[i].live && masks[i].rlen == n - 1 &&
				    !memcmp(masks[i].raw, line + 1, n - 1)) {
					bus__trie_remove(&a, &t, masks[i].norm,
					                 masks[i].nlen, fake(i));
					masks[i].live = false;
				}
		} else if (ntopics < TOPICS_MAX) {
			topics[ntopics] = line;
			tlen[ntopics++] = n;
		}
	}
	for (int i = 0; i < ntopics; i++)
		compare(&t, topics[i], tlen[i], star);
	/* a long topic too: depth must not matter to correctness */
	static char deep[20001];
	size_t dn = 0;
	for (int i = 0; i < 10000; i++) {
		if (i)
			deep[dn++] = '/';
		deep[dn++] = i % 3 ? 'a' : 'b';
	}
	compare(&t, deep, dn, star);
	for (int i = 0; i < nmasks; i++)
		if (masks[i].live)
			bus__trie_remove(&a, &t, masks[i].norm, masks[i].nlen,
			                 fake(i));
	bus__trie_free(&a, &t);
	return 0;
}
