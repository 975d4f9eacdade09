/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tstats.c — statistics per topic prefix (the first cfg.topic_stats_depth
 * levels of a topic: events/process/lifecycle): frames and bytes in
 * (publishes routed) and out (deliveries queued), deliveries dropped, and
 * the receivers of the row's last publish. A fixed table: at most
 * cfg.topic_stats_rows rows, each made on its prefix's first publish and
 * kept, then one "other" row for every prefix past them. One hash probe
 * per publish; no allocation once the table is full.
 */
#include "internal.h"

#include <string.h>

int bus__tstats_init(struct bus_core *core)
{
	struct bus_tstats *t = &core->ts;
	memset(t, 0, sizeof(*t));
	if (!core->cfg.topic_stats_depth || !core->cfg.topic_stats_rows)
		return 0;
	uint32_t cap = 16;
	while (cap < 2 * core->cfg.topic_stats_rows)
		cap *= 2;
	t->rows = bus__calloc(&core->a, sizeof(*t->rows) *
	                                    core->cfg.topic_stats_rows);
	t->idx = bus__calloc(&core->a, sizeof(*t->idx) * cap);
	if (!t->rows || !t->idx) {
		bus__tstats_free(core);
		return BUS_ENOMEM;
	}
	t->cap = cap;
	t->max = core->cfg.topic_stats_rows;
	return 0;
}

void bus__tstats_free(struct bus_core *core)
{
	struct bus_tstats *t = &core->ts;
	for (uint32_t i = 0; i < t->n; i++)
		bus__free(&core->a, t->rows[i].key);
	bus__free(&core->a, t->rows);
	bus__free(&core->a, t->idx);
	memset(t, 0, sizeof(*t));
}

/* The bytes of topic's first depth levels. */
static size_t prefix_len(const char *topic, size_t len, uint32_t depth)
{
	const char *p = topic, *end = topic + len;
	for (uint32_t lv = 1; lv < depth; lv++) {
		const char *s = memchr(p, '/', (size_t)(end - p));
		if (!s)
			return len;
		p = s + 1;
	}
	const char *s = memchr(p, '/', (size_t)(end - p));
	return s ? (size_t)(s - topic) : len;
}

struct bus_tstat_row *bus__tstats_lookup(struct bus_core *core, const char *topic,
                                      size_t len, struct bus_tstat_row **cache)
{
	struct bus_tstats *t = &core->ts;
	if (!t->cap)
		return NULL;
	size_t k = prefix_len(topic, len, core->cfg.topic_stats_depth);
	uint32_t h = bus__hash(topic, k), mask = t->cap - 1;
	for (uint32_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t x = t->idx[i];
		if (!x)
			break; /* not there: i is where it goes */
		struct bus_tstat_row *r = &t->rows[x - 1];
		if (r->hash == h && r->key_len == k && !memcmp(r->key, topic, k)) {
			if (cache)
				*cache = r;
			return r;
		}
	}
	if (t->n == t->max)
		return &t->other;
	char *key = bus__strndup(&core->a, topic, k);
	if (!key)
		return &t->other; /* counted all the same */
	uint32_t i = h & mask;
	while (t->idx[i])
		i = (i + 1) & mask;
	struct bus_tstat_row *r = &t->rows[t->n++];
	*r = (struct bus_tstat_row){.key = key, .key_len = (uint32_t)k,
	                            .hash = h, .full = k < len};
	t->idx[i] = t->n;
	if (cache)
		*cache = r;
	return r;
}

