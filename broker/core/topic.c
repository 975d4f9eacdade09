/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topic.c — topics, subscription masks, broadcast masks, and the trie.
 *
 * Topic rules (PROTOCOL.md §4): levels are separated by '/', empty levels
 * are levels, nothing is normalised: "a/b", "/a/b" and "a//b" differ.
 *   "+"  matches exactly one level        a/+/c  ~ a/b/c,  not a/c
 *   "#"  matches one or more levels       a/#    ~ a/b, a/b/c,  not a
 *   "#"  alone matches every topic        #      ~ a, a/b, ""
 *   "#"  ends a mask                      a/#/x  means a/#
 *   "*"  (our extension, unless switched off) is a synonym of "+"
 *   "+#", "a+" and the like are literal levels.
 * Broadcast masks match client names split on '.': "*" matches one or more
 * remaining levels, "?" exactly one (collector.* ~ collector.proc,
 * collector.net.1; not collector).
 *
 * The trie has one node per mask level: exact children in a hash map, one
 * "+" child, and two subscriber sets: masks ending at the node and masks
 * with "#" after it. Matching a topic of n levels enters at most the nodes
 * on the exact and "+" paths of those n levels, however many masks exist.
 * Recursion depth is bounded by the topic level limit checked before.
 */
#include "internal.h"

#include <string.h>

/* Level iteration: pos > len means no level left. */
static size_t level_end(const char *s, size_t len, size_t pos, char sep)
{
	const char *e = memchr(s + pos, sep, len - pos);
	return e ? (size_t)(e - s) : len;
}

uint32_t bus__levels_sep(const char *s, size_t len, char sep)
{
	uint32_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += s[i] == sep;
	return n;
}

uint32_t bus__levels(const char *s, size_t len)
{
	return bus__levels_sep(s, len, '/');
}

/* t is p or below it (p/...). */
static bool topic_under(const char *t, size_t len, const char *p, size_t n)
{
	return len >= n && memcmp(t, p, n) == 0 && (len == n || t[n] == '/');
}

bool bus__topic_is_broker(const char *t, size_t len)
{
	return topic_under(t, len, BUS_BROKER_NAME, sizeof(BUS_BROKER_NAME) - 1) ||
	       topic_under(t, len, BUS_CONTROL_BROKER,
	                   sizeof(BUS_CONTROL_BROKER) - 1);
}

size_t bus__mask_normalize(const char *mask, size_t len, bool star_is_plus,
                           char *out)
{
	size_t pos = 0, o = 0;
	for (;;) {
		size_t end = level_end(mask, len, pos, '/');
		size_t ll = end - pos;
		if (pos)
			out[o++] = '/';
		if (ll == 1 && mask[pos] == '*' && star_is_plus) {
			out[o++] = '+';
		} else {
			memcpy(out + o, mask + pos, ll);
			o += ll;
		}
		if ((ll == 1 && mask[pos] == '#') || end == len)
			break;
		pos = end + 1;
	}
	out[o] = '\0';
	return o;
}

static bool wild_match(const char *mask, size_t mlen, const char *s,
                       size_t slen, char sep, char one, char rest)
{
	size_t mp = 0, sp = 0;
	bool m_more = true, s_more = true;
	while (m_more) {
		size_t me = level_end(mask, mlen, mp, sep);
		size_t ml = me - mp;
		if (!s_more)
			return false;
		size_t se = level_end(s, slen, sp, sep);
		if (ml == 1 && mask[mp] == rest)
			return true; /* at least this level is present */
		if (!(ml == 1 && mask[mp] == one) &&
		    !(ml == se - sp && memcmp(mask + mp, s + sp, ml) == 0))
			return false;
		m_more = me < mlen;
		s_more = se < slen;
		mp = me + 1;
		sp = se + 1;
	}
	return !s_more;
}

bool bus__mask_match(const char *mask, size_t mlen, const char *topic,
                     size_t tlen)
{
	return wild_match(mask, mlen, topic, tlen, '/', '+', '#');
}

/* Level by level: "rest" ('#') in r covers whatever s has from there on
 * (s has a level there, or it would have ended before); "rest" in s is
 * covered only by "rest"; "one" ('+') in r covers a literal or "one"; a
 * literal only itself; and without "rest" both must end together. */
static bool wild_covers(const char *r, size_t rl, const char *s, size_t sl,
                        char sep, char one, char rest, uint64_t *steps)
{
	size_t rp = 0, sp = 0;
	for (;;) {
		size_t re = level_end(r, rl, rp, sep);
		size_t se = level_end(s, sl, sp, sep);
		size_t rn = re - rp, sn = se - sp;
		++*steps;
		if (rn == 1 && r[rp] == rest)
			return true;
		if (sn == 1 && s[sp] == rest)
			return false;
		if (!(rn == 1 && r[rp] == one) &&
		    !(rn == sn && memcmp(r + rp, s + sp, rn) == 0))
			return false;
		bool r_more = re < rl, s_more = se < sl;
		if (r_more != s_more)
			return false;
		if (!r_more)
			return true;
		rp = re + 1;
		sp = se + 1;
	}
}

/* Is there a name or topic both match? Level by level: "rest" in either
 * matches whatever the other has from there on (it has a level there);
 * two literals must be equal; both must end together otherwise. */
static bool wild_overlap(const char *a, size_t al, const char *b, size_t bl,
                         char sep, char one, char rest)
{
	size_t ap = 0, bp = 0;
	for (;;) {
		size_t ae = level_end(a, al, ap, sep);
		size_t be = level_end(b, bl, bp, sep);
		size_t an = ae - ap, bn = be - bp;
		bool aw = an == 1 && a[ap] == one, bw = bn == 1 && b[bp] == one;
		if ((an == 1 && a[ap] == rest) || (bn == 1 && b[bp] == rest))
			return true;
		if (!aw && !bw && !(an == bn && memcmp(a + ap, b + bp, an) == 0))
			return false;
		bool a_more = ae < al, b_more = be < bl;
		if (a_more != b_more)
			return false;
		if (!a_more)
			return true;
		ap = ae + 1;
		bp = be + 1;
	}
}

bool bus__mask_covers(const char *r, size_t rl, const char *s, size_t sl,
                      uint64_t *steps)
{
	return wild_covers(r, rl, s, sl, '/', '+', '#', steps);
}

bool bus__bcast_covers(const char *r, size_t rl, const char *s, size_t sl)
{
	uint64_t steps = 0;
	return wild_covers(r, rl, s, sl, '.', '?', '*', &steps);
}

bool bus__mask_overlap(const char *a, size_t al, const char *b, size_t bl)
{
	return wild_overlap(a, al, b, bl, '/', '+', '#');
}

bool bus__bcast_overlap(const char *a, size_t al, const char *b, size_t bl)
{
	return wild_overlap(a, al, b, bl, '.', '?', '*');
}

bool bus__bcast_match(const char *mask, size_t mlen, const char *name,
                      size_t nlen)
{
	return wild_match(mask, mlen, name, nlen, '.', '?', '*');
}

bool bus_name_mask_match(const char *mask, const char *name)
{
	return bus__bcast_match(mask, strlen(mask), name, strlen(name));
}

size_t bus__bcast_prefix(const char *mask, size_t mlen)
{
	size_t pos = 0;
	for (;;) {
		size_t end = level_end(mask, mlen, pos, '.');
		if (end - pos == 1 && (mask[pos] == '?' || mask[pos] == '*'))
			return pos;
		if (end == mlen)
			return mlen;
		pos = end + 1;
	}
}

/* ---- subscriber sets --------------------------------------------------- */
static int subset_add(const struct bus_allocator *a, struct bus_subset *s,
                      struct bus_conn *c)
{
	if (s->count == s->cap) {
		uint32_t ncap = s->cap ? s->cap * 2 : 2;
		void *n = bus__realloc(a, s->items, sizeof(*s->items) * ncap);
		if (!n)
			return BUS_ENOMEM;
		s->items = n;
		s->cap = ncap;
	}
	s->items[s->count++] = c;
	return 0;
}

static void subset_remove(const struct bus_allocator *a, struct bus_subset *s,
                          struct bus_conn *c)
{
	for (uint32_t i = 0; i < s->count; i++) {
		if (s->items[i] != c)
			continue;
		memmove(s->items + i, s->items + i + 1,
		        sizeof(*s->items) * (s->count - i - 1));
		if (--s->count == 0) {
			bus__free(a, s->items);
			*s = (struct bus_subset){0};
		}
		return;
	}
	BUS_ASSERT(!"subscriber missing from its trie node");
}

/* ---- the trie ---------------------------------------------------------- */
static bool tnode_empty(const struct bus_tnode *n)
{
	return n->children.count == 0 && !n->plus && n->end.count == 0 &&
	       n->hash.count == 0;
}

static void tnode_prune(const struct bus_allocator *a, struct bus_trie *t,
                        struct bus_tnode *n)
{
	while (n->parent && tnode_empty(n)) {
		struct bus_tnode *p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else
			BUS_ASSERT(bus__strmap_del(a, &p->children, n->level,
			                           n->level_len));
		bus__strmap_free(a, &n->children);
		bus__free(a, n->level);
		bus__free(a, n);
		t->nodes--;
		n = p;
	}
}

static struct bus_tnode *tnode_child(const struct bus_allocator *a,
                                     struct bus_trie *t, struct bus_tnode *n,
                                     const char *lv, size_t len)
{
	bool plus = len == 1 && lv[0] == '+';
	if (plus && n->plus)
		return n->plus;
	if (!plus) {
		void **v = bus__strmap_get(&n->children, lv, len);
		if (v)
			return *v;
	}
	struct bus_tnode *c = bus__calloc(a, sizeof(*c));
	if (!c)
		return NULL;
	c->parent = n;
	c->level = bus__strndup(a, lv, len);
	c->level_len = (uint32_t)len;
	if (!c->level ||
	    (!plus && bus__strmap_put(a, &n->children, lv, len, c) != 0)) {
		bus__free(a, c->level);
		bus__free(a, c);
		return NULL;
	}
	if (plus)
		n->plus = c;
	t->nodes++;
	return c;
}

/* Walks (creating with create) to the node of a normalised mask; *hash says
 * whether the mask ends in "#" (the subscriber goes in that node's hash
 * set). */
static struct bus_tnode *trie_walk(const struct bus_allocator *a,
                                   struct bus_trie *t, const char *mask,
                                   size_t len, bool create, bool *hash)
{
	struct bus_tnode *n = &t->root;
	size_t pos = 0;
	*hash = false;
	for (;;) {
		size_t end = level_end(mask, len, pos, '/');
		size_t ll = end - pos;
		if (ll == 1 && mask[pos] == '#') {
			*hash = true;
			return n;
		}
		if (create) {
			n = tnode_child(a, t, n, mask + pos, ll);
		} else if (ll == 1 && mask[pos] == '+') {
			n = n->plus;
		} else {
			void **v = bus__strmap_get(&n->children, mask + pos, ll);
			n = v ? *v : NULL;
		}
		if (!n || end == len)
			return n;
		pos = end + 1;
	}
}

int bus__trie_add(const struct bus_allocator *a, struct bus_trie *t,
                  const char *mask, size_t len, struct bus_conn *c)
{
	bool hash;
	struct bus_tnode *n = trie_walk(a, t, mask, len, true, &hash);
	if (!n)
		return BUS_ENOMEM; /* nodes made on the way stay: harmless */
	int rc = subset_add(a, hash ? &n->hash : &n->end, c);
	if (rc)
		tnode_prune(a, t, n);
	return rc;
}

void bus__trie_remove(const struct bus_allocator *a, struct bus_trie *t,
                      const char *mask, size_t len, struct bus_conn *c)
{
	bool hash;
	struct bus_tnode *n = trie_walk(a, t, mask, len, false, &hash);
	BUS_ASSERT(n != NULL);
	subset_remove(a, hash ? &n->hash : &n->end, c);
	tnode_prune(a, t, n);
}

static void tnode_free(const struct bus_allocator *a, struct bus_tnode *n)
{
	for (uint32_t i = 0; i < n->children.cap; i++)
		if (bus__strmap_live(&n->children, i)) {
			struct bus_tnode *c = n->children.slots[i].value;
			tnode_free(a, c);
			bus__free(a, c->level);
			bus__free(a, c);
		}
	if (n->plus) {
		tnode_free(a, n->plus);
		bus__free(a, n->plus->level);
		bus__free(a, n->plus);
	}
	bus__strmap_free(a, &n->children);
	bus__free(a, n->end.items);
	bus__free(a, n->hash.items);
}

void bus__trie_free(const struct bus_allocator *a, struct bus_trie *t)
{
	tnode_free(a, &t->root);
	memset(t, 0, sizeof(*t));
}

/* fn NULL: "is there anyone?" (the walk stops at the first). */
static bool subset_visit(const struct bus_subset *s, bus_trie_visit_fn fn,
                         void *arg)
{
	if (!fn)
		return s->count > 0;
	for (uint32_t i = 0; i < s->count; i++)
		fn(s->items[i], arg);
	return false;
}

/* Each node lies on one path from the root, and the walk enters a node
 * only while every level above it matched the topic: a node is entered
 * at most once per walk, and only for a mask that matches the topic up
 * to that node's level. So a walk enters at most (topic levels + 1) x
 * (distinct masks matching so far) nodes, whatever the number of
 * subscribers; the broker's subscription budgets bound the masks, and a
 * client's masks that another of its masks covers are not in the trie
 * (core.c, mask books). True: stop (fn NULL and someone found). */
static bool trie_match(struct bus_trie *t, const struct bus_tnode *n,
                       const char *topic, size_t len, size_t pos, bool more,
                       bus_trie_visit_fn fn, void *arg)
{
	t->visits++;
	if (!more)
		return subset_visit(&n->end, fn, arg);
	if (subset_visit(&n->hash, fn, arg))
		return true;
	size_t end = level_end(topic, len, pos, '/');
	bool next_more = end < len;
	if (n->children.count) {
		void **v = bus__strmap_get(&n->children, topic + pos, end - pos);
		if (v && trie_match(t, *v, topic, len, end + 1, next_more, fn,
		                    arg))
			return true;
	}
	return n->plus && trie_match(t, n->plus, topic, len, end + 1,
	                             next_more, fn, arg);
}

void bus__trie_match(struct bus_trie *t, const char *topic, size_t len,
                     bus_trie_visit_fn fn, void *arg)
{
	trie_match(t, &t->root, topic, len, 0, true, fn, arg);
}

bool bus__trie_any(struct bus_trie *t, const char *topic, size_t len)
{
	return trie_match(t, &t->root, topic, len, 0, true, NULL, NULL);
}
