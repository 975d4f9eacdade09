/* SPDX-License-Identifier: Apache-2.0 */
/*
 * book.c — a client's mask books: its subscriptions, and its exclusions.
 *
 * A client is sent a frame once however many of its masks match it (and
 * spared it once however many of its exclusions do), so a mask another
 * mask of the same book covers (bus__mask_covers: every topic it matches,
 * the other matches) need not be in the trie. A book keeps every mask, and
 * in the trie only those no other covers: without this, the 1,024 masks of
 * 10 levels over {a, +} then "z" made every publish on a/.../a/y enter
 * 2,047 nodes; with it, +/.../+/z covers them all and a walk enters 11.
 *
 * Every mask out of the trie hangs under a cover (its "cover", in whose
 * "deps" list it is), and covers may hang under covers; the chain ends in
 * the trie. Covering is transitive, so:
 *   - a mask that leaves while in the trie puts its dependents back in the
 *     trie (unchecked: they are compared again later);
 *   - a mask that leaves while covered hands its dependents to its cover;
 *   - a mask found covered takes its dependents along.
 * So adding and removing cost a trie operation and a mask's dependents,
 * never a scan, and what is in the trie always covers every mask in the
 * book: deliveries never wait for the comparisons.
 *
 * The comparisons (is this mask covered by one in the trie, does it cover
 * some there) are work queued per book and done in budgeted slices: right
 * after the frame that queued them, and then at the broker's ticks (core.c)
 * — so no frame, however built, stalls the broker for more than a slice
 * plus one mask's comparisons. A book with more than BUS_BOOK_COMPARE_MAX
 * masks in the trie is not compared (they simply stay in the trie: the
 * walk is then the plain trie's, bounded by the masks).
 */
#include "internal.h"

#include <string.h>

struct bus_mask_ent {
	const char *key; /* the book's map's key */
	uint32_t len;
	bool in_trie, queued;
	struct bus_mask_ent *cover;              /* when out of the trie */
	struct bus_mask_ent *deps;               /* masks hanging under it */
	struct bus_mask_ent *dep_next, *dep_prev; /* in its cover's deps */
	struct bus_mask_ent *work_next, *work_prev;
};

static struct bus_mask_ent *ent_of(const struct bus_book *b, const char *m,
                                   size_t ml)
{
	void **v = bus__strmap_get(&b->set, m, ml);
	return v ? *v : NULL;
}

bool bus__book_has(const struct bus_book *b, const char *m, size_t ml)
{
	return ent_of(b, m, ml) != NULL;
}

/* ---- the work queue ---------------------------------------------------- */
static void work_push(struct bus_book *b, struct bus_mask_ent *e)
{
	if (e->queued)
		return;
	e->queued = true;
	e->work_next = NULL;
	e->work_prev = b->work_last;
	if (b->work_last)
		b->work_last->work_next = e;
	else
		b->work_first = e;
	b->work_last = e;
}

static void work_unlink(struct bus_book *b, struct bus_mask_ent *e)
{
	if (!e->queued)
		return;
	if (e->work_prev)
		e->work_prev->work_next = e->work_next;
	else
		b->work_first = e->work_next;
	if (e->work_next)
		e->work_next->work_prev = e->work_prev;
	else
		b->work_last = e->work_prev;
	e->queued = false;
	e->work_next = e->work_prev = NULL;
}

/* ---- dependents -------------------------------------------------------- */
static void dep_link(struct bus_mask_ent *cover, struct bus_mask_ent *e)
{
	e->cover = cover;
	e->dep_prev = NULL;
	e->dep_next = cover->deps;
	if (cover->deps)
		cover->deps->dep_prev = e;
	cover->deps = e;
}

static void dep_unlink(struct bus_mask_ent *e)
{
	if (!e->cover)
		return;
	if (e->dep_prev)
		e->dep_prev->dep_next = e->dep_next;
	else
		e->cover->deps = e->dep_next;
	if (e->dep_next)
		e->dep_next->dep_prev = e->dep_prev;
	e->cover = e->dep_next = e->dep_prev = NULL;
}

/* Moves every dependent of from under to (which covers from). */
static void deps_hand(struct bus_mask_ent *from, struct bus_mask_ent *to)
{
	while (from->deps) {
		struct bus_mask_ent *d = from->deps;
		dep_unlink(d);
		dep_link(to, d);
	}
}

/* Takes e out of the trie, under cover. */
static void cover_under(const struct bus_allocator *a, struct bus_book *b,
                        struct bus_conn *c, struct bus_mask_ent *e,
                        struct bus_mask_ent *cover)
{
	bus__trie_remove(a, b->trie, e->key, e->len, c);
	e->in_trie = false;
	b->in_trie--;
	dep_link(cover, e);
	deps_hand(e, cover);
}

/* ---- adding and removing ----------------------------------------------- */
int bus__book_add(const struct bus_allocator *a, struct bus_book *b,
                  const char *m, size_t ml, struct bus_conn *c)
{
	struct bus_mask_ent *e = bus__calloc(a, sizeof(*e));
	if (!e)
		return BUS_ENOMEM;
	if (bus__strmap_put(a, &b->set, m, ml, e) != 0) {
		bus__free(a, e);
		return BUS_ENOMEM;
	}
	e->key = bus__strmap_key(&b->set, m, ml);
	e->len = (uint32_t)ml;
	if (bus__trie_add(a, b->trie, m, ml, c) != 0) {
		bus__strmap_del(a, &b->set, m, ml);
		bus__free(a, e);
		return BUS_ENOMEM;
	}
	e->in_trie = true;
	b->in_trie++;
	work_push(b, e);
	return 0;
}

int bus__book_remove(const struct bus_allocator *a, struct bus_book *b,
                     const char *m, size_t ml, struct bus_conn *c)
{
	struct bus_mask_ent *e = ent_of(b, m, ml);
	BUS_ASSERT(e != NULL);
	int rc = 0;
	work_unlink(b, e);
	if (e->in_trie) {
		bus__trie_remove(a, b->trie, e->key, e->len, c);
		b->in_trie--;
		while (e->deps) {
			struct bus_mask_ent *d = e->deps;
			dep_unlink(d);
			if (rc == 0 && bus__trie_add(a, b->trie, d->key, d->len,
			                             c) != 0)
				rc = BUS_ENOMEM; /* the caller cuts the client */
			if (rc == 0) {
				d->in_trie = true;
				b->in_trie++;
				work_push(b, d);
			}
		}
	} else {
		deps_hand(e, e->cover);
		dep_unlink(e);
	}
	bus__strmap_del(a, &b->set, m, ml);
	bus__free(a, e);
	return rc;
}

void bus__book_free(const struct bus_allocator *a, struct bus_book *b,
                    struct bus_conn *c)
{
	for (uint32_t i = 0; i < b->set.cap; i++) {
		if (!bus__strmap_live(&b->set, i))
			continue;
		struct bus_mask_ent *e = b->set.slots[i].value;
		if (e->in_trie)
			bus__trie_remove(a, b->trie, e->key, e->len, c);
		bus__free(a, e);
	}
	bus__strmap_free(a, &b->set);
	b->in_trie = 0;
	b->work_first = b->work_last = NULL;
}

/* ---- the comparisons --------------------------------------------------- */
/* Compares e (in the trie) with the book's other masks in the trie: under
 * the first that covers it, or over every one it covers. */
static void compare_one(const struct bus_allocator *a, struct bus_book *b,
                        struct bus_conn *c, struct bus_mask_ent *e,
                        uint64_t *steps)
{
	const struct bus_strmap *s = &b->set;
	for (uint32_t i = 0; i < s->cap; i++) {
		if (!bus__strmap_live(s, i))
			continue;
		struct bus_mask_ent *r = s->slots[i].value;
		if (r == e || !r->in_trie)
			continue;
		if (bus__mask_covers(r->key, r->len, e->key, e->len, steps)) {
			cover_under(a, b, c, e, r);
			return;
		}
	}
	/* no cover: what e covers goes under it (deleting nothing from the
	 * map, so the slots stay where they are) */
	for (uint32_t i = 0; i < s->cap; i++) {
		if (!bus__strmap_live(s, i))
			continue;
		struct bus_mask_ent *r = s->slots[i].value;
		if (r != e && r->in_trie &&
		    bus__mask_covers(e->key, e->len, r->key, r->len, steps)) {
			work_unlink(b, r);
			cover_under(a, b, c, r, e);
		}
	}
}

bool bus__book_work(const struct bus_allocator *a, struct bus_book *b,
                    struct bus_conn *c, uint64_t *steps, uint64_t limit)
{
	if (b->in_trie > BUS_BOOK_COMPARE_MAX) {
		while (b->work_first)
			work_unlink(b, b->work_first);
		return false;
	}
	while (b->work_first && *steps < limit) {
		struct bus_mask_ent *e = b->work_first;
		work_unlink(b, e);
		if (e->in_trie)
			compare_one(a, b, c, e, steps);
	}
	return b->work_first != NULL;
}

/* ---- for the invariant checker ----------------------------------------- */
const char *bus__book_fault(const struct bus_book *b)
{
	uint32_t in = 0;
	for (uint32_t i = 0; i < b->set.cap; i++) {
		if (!bus__strmap_live(&b->set, i))
			continue;
		const struct bus_mask_ent *e = b->set.slots[i].value;
		if (e->key != b->set.slots[i].key || e->len != b->set.slots[i].key_len)
			return "a mask whose entry names another";
		in += e->in_trie;
		if (e->in_trie != !e->cover)
			return "a mask both in the trie and under a cover, or neither";
		uint64_t steps = 0;
		uint32_t hops = 0;
		for (const struct bus_mask_ent *x = e; x->cover; x = x->cover) {
			if (!bus__mask_covers(x->cover->key, x->cover->len, x->key,
			                      x->len, &steps))
				return "a mask under one that does not cover it";
			if (++hops > b->set.count)
				return "a cycle of covers";
		}
		for (const struct bus_mask_ent *d = e->deps; d; d = d->dep_next)
			if (d->cover != e)
				return "a dependent whose cover is another";
	}
	if (in != b->in_trie)
		return "the count of masks in the trie is wrong";
	return NULL;
}
