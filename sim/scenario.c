/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scenario.c — scenario and fault-plan files (scenarios/README.md), YAML
 * read with libyaml's document API. Every key is known; an error names the
 * file, the line and what is wrong. Process tables are written as deltas
 * per poll and held so: each collector's changes in time order (struct
 * sim_op), from which one table is replayed forward (struct sim_replay) —
 * memory in the changes, never a table per poll.
 */
#include "sim.h"
#include "bus/config.h"
#include "../broker/core/internal.h" /* bus__utf8_valid */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <yaml.h>

const char *const sim_fault_names[SIM_F_KINDS] = {
	"broker_crash", "collector_crash", "reset",    "delay",
	"short_io",     "slow_consumer",   "conn_limit", "malformed",
	"agent_crash",  "operator",
};

const char *const sim_qos_names[4] = {
	"none", "processed", "realtime", "realtime_processed",
};

struct ld {
	yaml_document_t doc;
	const char *path;
	char *err;
	size_t errlen;
	/* strings of every table live here, freed with the scenario */
	char **pool;
	size_t pool_n, pool_cap;
	size_t entries; /* changes of every table so far */
};

/* What a scenario may cost before it is refused, with a message: its
 * file, its nesting (checked before libyaml builds the document: the
 * format needs 7 levels) and its tables' changes as the simulator holds
 * them (the shipped scenarios hold under 4,000; a million is 136 MiB;
 * aliases make a list count at every poll that names it). */
#define SCENARIO_BYTES_MAX (8u << 20)
#define SCENARIO_DEPTH_MAX 12u
#define SCENARIO_ENTRIES_MAX 1000000u

static int fail(struct ld *l, const yaml_node_t *n, const char *what,
                const char *key)
{
	snprintf(l->err, l->errlen, "%s:%zu: %s%s%s", l->path,
	         n ? n->start_mark.line + 1 : 0, key ? key : "",
	         key ? ": " : "", what);
	return 2;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
	                                        : NULL;
}

static yaml_node_t *node(struct ld *l, int i)
{
	return yaml_document_get_node(&l->doc, i);
}

static int get_u64(struct ld *l, const yaml_node_t *n, const char *key,
                   uint64_t max, uint64_t *out)
{
	const char *s = scalar(n);
	char *end;
	errno = 0;
	unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10)
	                                                   : 0;
	if (!s || *s < '0' || *s > '9' || errno || *end || v > max) {
		char what[64];
		snprintf(what, sizeof(what), "expected an integer 0..%llu",
		         (unsigned long long)max);
		return fail(l, n, what, key);
	}
	*out = v;
	return 0;
}

static int get_str(struct ld *l, const yaml_node_t *n, const char *key,
                   char *out, size_t cap)
{
	const char *s = scalar(n);
	if (!s || strlen(s) >= cap)
		return fail(l, n, "expected a (short enough) string", key);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Iterates a mapping's pairs. */
#define FOR_PAIRS(l, n, k, v)                                                  \
	for (yaml_node_pair_t *p_ = (n)->data.mapping.pairs.start;            \
	     p_ < (n)->data.mapping.pairs.top &&                              \
	     ((k) = scalar(node(l, p_->key)), (v) = node(l, p_->value), 1);   \
	     p_++)
#define FOR_ITEMS(l, n, v)                                                     \
	for (yaml_node_item_t *i_ = (n)->data.sequence.items.start;           \
	     i_ < (n)->data.sequence.items.top && ((v) = node(l, *i_), 1);    \
	     i_++)

static bool is_map(const yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}
static bool is_seq(const yaml_node_t *n)
{
	return n && n->type == YAML_SEQUENCE_NODE;
}

static char *pooled(struct ld *l, const char *s, size_t n)
{
	if (l->pool_n == l->pool_cap) {
		size_t cap = l->pool_cap ? l->pool_cap * 2 : 256;
		char **p = realloc(l->pool, cap * sizeof(*p));
		if (!p)
			return NULL;
		l->pool = p;
		l->pool_cap = cap;
	}
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = 0;
	return l->pool[l->pool_n++] = d;
}

/* ---- process tables ------------------------------------------------------------ */
struct work {
	struct sim_proc *v;
	size_t n, cap;
};

static int cmp_proc(const void *a, const void *b)
{
	const struct sim_proc *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static struct sim_proc *find(struct work *w, uint32_t pid, uint64_t start)
{
	struct sim_proc k = {.pid = pid, .start = start};
	return w->n ? bsearch(&k, w->v, w->n, sizeof(k), cmp_proc) : NULL;
}

/* [pid, start, ppid, uid, name, exe, cmdline] */
static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* A process's text (name, path, command line) into the pool: a YAML
 * string, or, since a process's need not be UTF-8 and YAML's must,
 * !bytes 'text' where \xNN is the byte NN and \\ a backslash (what
 * sim_yq writes for text that is not UTF-8). NULL: l->err says why. */
static char *text_field(struct ld *l, const yaml_node_t *n, const char *key,
                        size_t *len)
{
	const char *v = scalar(n);
	if (!v) {
		fail(l, n, "expected a string", key);
		return NULL;
	}
	size_t vl = strlen(v);
	const char *tag = (const char *)n->tag;
	if (!tag || strcmp(tag, "!bytes") != 0) {
		*len = vl;
		char *d = pooled(l, v, vl);
		if (!d)
			fail(l, n, "out of memory", NULL);
		return d;
	}
	char *d = pooled(l, v, vl); /* decoded in place: never longer */
	if (!d) {
		fail(l, n, "out of memory", NULL);
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < vl; i++) {
		int hi = v[i] == '\\' && v[i + 1] == 'x' ? hexval(v[i + 2]) : -1;
		int lo = hi >= 0 ? hexval(v[i + 3]) : -1;
		if (v[i] != '\\') {
			d[o++] = v[i];
		} else if (v[i + 1] == '\\') {
			d[o++] = '\\';
			i++;
		} else if (lo >= 0 && (hi | lo)) {
			d[o++] = (char)(hi << 4 | lo);
			i += 3;
		} else {
			fail(l, n, "!bytes: \\xNN (not 00) or \\\\ after a "
			           "backslash", key);
			return NULL;
		}
	}
	d[o] = 0;
	*len = o;
	return d;
}

/* Doubles an array when n reaches a power of two. */
static bool grow_pow2(void **v, size_t n, size_t each)
{
	if (n & (n - 1))
		return true;
	void *nv = realloc(*v, (n ? 2 * n : 1) * each);
	if (!nv)
		return false;
	*v = nv;
	return true;
}

/* Records a change of c's table: p's record as it is now, or its
 * deletion. */
static int op_push(struct ld *l, struct sim_collector_spec *c,
                   const yaml_node_t *e, const struct sim_proc *p, bool del)
{
	if (++l->entries > SCENARIO_ENTRIES_MAX)
		return fail(l, e, "the tables change more than 1,000,000 times "
		            "(every add, set and del counts)", "table");
	if (!grow_pow2((void **)&c->ops, c->n_ops, sizeof(*c->ops)))
		return fail(l, e, "out of memory", NULL);
	c->ops[c->n_ops++] = (struct sim_op){.p = *p, .del = del};
	return 0;
}

static int parse_add(struct ld *l, struct sim_collector_spec *c,
                     struct work *w, const yaml_node_t *e)
{
	const yaml_node_t *f[7];
	int k = 0;
	yaml_node_t *it;
	if (!is_seq(e))
		return fail(l, e, "expected [pid, start, ppid, uid, name, exe, "
		                  "cmdline]", "add");
	FOR_ITEMS(l, e, it) {
		if (k == 7)
			return fail(l, e, "more than 7 fields", "add");
		f[k++] = it;
	}
	if (k != 7)
		return fail(l, e, "expected 7 fields: [pid, start, ppid, uid, "
		                  "name, exe, cmdline]", "add");
	uint64_t pid, start, ppid, uid;
	int rc;
	if ((rc = get_u64(l, f[0], "add.pid", 4194304, &pid)) ||
	    (rc = get_u64(l, f[1], "add.start", UINT64_MAX, &start)) ||
	    (rc = get_u64(l, f[2], "add.ppid", 4194304, &ppid)) ||
	    (rc = get_u64(l, f[3], "add.uid", UINT32_MAX, &uid)))
		return rc;
	if (!pid)
		return fail(l, f[0], "pid 0", "add");
	if (find(w, (uint32_t)pid, start))
		return fail(l, e, "this process (pid, start) is already there",
		            "add");
	size_t nl, xl, cl;
	char *name = text_field(l, f[4], "add.name", &nl);
	char *exe = name ? text_field(l, f[5], "add.exe", &xl) : NULL;
	char *cmd = exe ? text_field(l, f[6], "add.cmdline", &cl) : NULL;
	if (!cmd)
		return 2;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct sim_proc *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return fail(l, e, "out of memory", NULL);
		w->v = v;
		w->cap = cap;
	}
	struct sim_proc *p = &w->v[w->n++];
	memset(p, 0, sizeof(*p));
	p->pid = (uint32_t)pid;
	p->start = start;
	p->ppid = (uint32_t)ppid;
	p->uid = (uint32_t)uid;
	p->name = name;
	p->exe = exe;
	/* arguments are separated by spaces in the file, by NULs here */
	p->cmdline = cmd;
	for (size_t i = 0; i < cl; i++)
		if (p->cmdline[i] == ' ')
			p->cmdline[i] = 0;
	p->cmdline_len = cl ? cl + 1 : 0;
	int rc2 = op_push(l, c, e, p, false);
	qsort(w->v, w->n, sizeof(*w->v), cmp_proc);
	return rc2;
}

static int parse_key(struct ld *l, struct work *w, const yaml_node_t *e,
                     int want, const char *what, const yaml_node_t **rest,
                     struct sim_proc **out)
{
	const yaml_node_t *f[4] = {0};
	int k = 0;
	yaml_node_t *it;
	if (!is_seq(e))
		return fail(l, e, "expected a list", what);
	FOR_ITEMS(l, e, it) {
		if (k < 4)
			f[k] = it;
		k++;
	}
	if (k != want)
		return fail(l, e, want == 2 ? "expected [pid, start]"
		                            : "expected [pid, start, field, value]",
		            what);
	uint64_t pid, start;
	int rc;
	if ((rc = get_u64(l, f[0], what, 4194304, &pid)) ||
	    (rc = get_u64(l, f[1], what, UINT64_MAX, &start)))
		return rc;
	*out = find(w, (uint32_t)pid, start);
	if (!*out)
		return fail(l, e, "no such process (pid, start) in the table", what);
	if (rest) {
		rest[0] = f[2];
		rest[1] = f[3];
	}
	return 0;
}

static int parse_set(struct ld *l, struct sim_collector_spec *c,
                     struct work *w, const yaml_node_t *e)
{
	const yaml_node_t *fv[2];
	struct sim_proc *p;
	int rc = parse_key(l, w, e, 4, "set", fv, &p);
	if (rc)
		return rc;
	const char *field = scalar(fv[0]), *v = scalar(fv[1]);
	if (!field || !v)
		return fail(l, e, "field and value are scalars", "set");
	uint64_t x;
	size_t tl;
	if (!strcmp(field, "name")) {
		if (!(p->name = text_field(l, fv[1], "set.name", &tl)))
			return 2;
	} else if (!strcmp(field, "exe")) {
		if (!(p->exe = text_field(l, fv[1], "set.exe", &tl)))
			return 2;
	} else if (!strcmp(field, "hash")) {
		snprintf(p->hash, sizeof(p->hash), "%s", v);
	} else if (!strcmp(field, "cmdline")) {
		if (!(p->cmdline = text_field(l, fv[1], "set.cmdline", &tl)))
			return 2;
		for (size_t i = 0; i < tl; i++)
			if (p->cmdline[i] == ' ')
				p->cmdline[i] = 0;
		p->cmdline_len = tl ? tl + 1 : 0;
	} else if (!strcmp(field, "ppid") || !strcmp(field, "uid")) {
		if ((rc = get_u64(l, fv[1], "set", UINT32_MAX, &x)))
			return rc;
		if (field[0] == 'p')
			p->ppid = (uint32_t)x;
		else
			p->uid = (uint32_t)x;
	} else
		return fail(l, fv[0], "field is name, exe, cmdline, ppid, uid or "
		                      "hash", "set");
	if (!p->name || !p->exe || !p->cmdline)
		return fail(l, e, "out of memory", NULL);
	return op_push(l, c, e, p, false);
}

static int parse_del(struct ld *l, struct sim_collector_spec *c,
                     struct work *w, const yaml_node_t *e)
{
	struct sim_proc *p;
	int rc = parse_key(l, w, e, 2, "del", NULL, &p);
	if (rc || (rc = op_push(l, c, e, p, true)))
		return rc;
	size_t i = (size_t)(p - w->v);
	memmove(&w->v[i], &w->v[i + 1], (w->n - i - 1) * sizeof(*w->v));
	w->n--;
	return 0;
}

static int parse_poll(struct ld *l, struct sim_collector_spec *c,
                      struct work *w, const yaml_node_t *n, uint64_t *last)
{
	if (!is_map(n))
		return fail(l, n, "expected {at_ms, add, set, del}", "table");
	const char *k;
	yaml_node_t *v, *e;
	uint64_t at = UINT64_MAX;
	size_t first = c->n_ops;
	int rc;
	FOR_PAIRS(l, n, k, v) {
		if (!k)
			return fail(l, n, "keys are strings", "table");
		if (!strcmp(k, "at_ms")) {
			if ((rc = get_u64(l, v, "at_ms", 86400000ull * 365, &at)))
				return rc;
			continue;
		}
		if (!is_seq(v))
			return fail(l, v, "expected a list", k);
		if (!strcmp(k, "add")) {
			FOR_ITEMS(l, v, e) if ((rc = parse_add(l, c, w, e))) return rc;
		} else if (!strcmp(k, "del")) {
			FOR_ITEMS(l, v, e) if ((rc = parse_del(l, c, w, e))) return rc;
		} else if (!strcmp(k, "set")) {
			FOR_ITEMS(l, v, e) if ((rc = parse_set(l, c, w, e))) return rc;
		} else
			return fail(l, v, "unknown key (at_ms, add, del, set)", k);
	}
	if (at == UINT64_MAX)
		return fail(l, n, "a poll needs at_ms", "table");
	if (*last != UINT64_MAX && at * SIM_MS <= *last)
		return fail(l, n, "polls must be in increasing at_ms", "table");
	*last = at * SIM_MS;
	if (!grow_pow2((void **)&c->polls, c->n_polls, sizeof(*c->polls)))
		return fail(l, n, "out of memory", NULL);
	c->polls[c->n_polls++] = (struct sim_poll){
	    .at_ns = at * SIM_MS, .first = first, .count = c->n_ops - first};
	return 0;
}

static int parse_collector(struct ld *l, struct sim_scenario *s,
                           const yaml_node_t *n)
{
	if (!is_map(n))
		return fail(l, n, "expected a mapping", "collectors");
	struct sim_collector_spec *cs =
		realloc(s->collectors, (s->n_collectors + 1) * sizeof(*cs));
	if (!cs)
		return fail(l, n, "out of memory", NULL);
	s->collectors = cs;
	struct sim_collector_spec *c = &cs[s->n_collectors++];
	memset(c, 0, sizeof(*c));
	c->poll_ns = 100 * SIM_MS;
	c->ticks_per_s = 100;
	c->qos = BUS_QOS_PROCESSED; /* what procmond publishes with */
	c->out_bytes_max = 1u << 20;  /* procmond's client buffer */
	c->retain_bytes_max = DE_RETAIN_BYTES_DEFAULT;
	struct work w = {0};
	const char *k;
	yaml_node_t *v, *e;
	int rc = 0;
	uint64_t x, last = UINT64_MAX;
	FOR_PAIRS(l, n, k, v) {
		if (!k)
			rc = fail(l, n, "keys are strings", "collectors");
		else if (!strcmp(k, "id"))
			rc = get_str(l, v, "id", c->id, sizeof(c->id));
		else if (!strcmp(k, "poll_ms")) {
			rc = get_u64(l, v, "poll_ms", 3600000, &x);
			c->poll_ns = x * SIM_MS;
			if (!rc && !x)
				rc = fail(l, v, "must be positive", "poll_ms");
		} else if (!strcmp(k, "ticks_per_s")) {
			rc = get_u64(l, v, "ticks_per_s", 100000, &x);
			c->ticks_per_s = (uint32_t)x;
		} else if (!strcmp(k, "qos")) {
			const char *q = scalar(v);
			c->qos = -1;
			for (int i = 0; q && i < 4; i++)
				if (!strcmp(q, sim_qos_names[i]))
					c->qos = i;
			if (c->qos < 0)
				rc = fail(l, v, "none, processed, realtime or "
				          "realtime_processed", "qos");
		} else if (!strcmp(k, "out_kib")) {
			rc = get_u64(l, v, "out_kib", 1u << 20, &x);
			c->out_bytes_max = (uint32_t)(x < 64 ? 64 : x) << 10;
		} else if (!strcmp(k, "retain_kib")) {
			rc = get_u64(l, v, "retain_kib", 1u << 26, &x);
			c->retain_bytes_max = (x < 1 ? 1 : x) << 10;
		} else if (!strcmp(k, "table")) {
			if (!is_seq(v))
				rc = fail(l, v, "expected a list of polls", "table");
			else
				FOR_ITEMS(l, v, e) if ((rc = parse_poll(l, c, &w, e, &last))) break;
		} else
			rc = fail(l, v, "unknown key (id, poll_ms, ticks_per_s, qos, "
			          "out_kib, retain_kib, table)", k);
		if (rc)
			break;
	}
	free(w.v);
	if (!rc && !de_name_level_valid(c->id, sizeof(c->id)))
		rc = fail(l, n, "a collector needs an id of letters, digits, "
		                "'-' or '_'", "id");
	for (size_t i = 0; !rc && i + 1 < s->n_collectors; i++)
		if (!strcmp(s->collectors[i].id, c->id))
			rc = fail(l, n, "duplicate collector id", "id");
	return rc;
}

static int parse_monitor(struct ld *l, struct sim_scenario *s,
                         const yaml_node_t *n)
{
	if (!is_map(n))
		return fail(l, n, "expected {name, masks}", "monitors");
	struct sim_monitor_spec *ms =
		realloc(s->monitors, (s->n_monitors + 1) * sizeof(*ms));
	if (!ms)
		return fail(l, n, "out of memory", NULL);
	s->monitors = ms;
	struct sim_monitor_spec *m = &ms[s->n_monitors++];
	memset(m, 0, sizeof(*m));
	const char *k;
	yaml_node_t *v, *e;
	int rc = 0;
	FOR_PAIRS(l, n, k, v) {
		if (k && !strcmp(k, "name"))
			rc = get_str(l, v, "name", m->name, sizeof(m->name));
		else if (k && !strcmp(k, "masks") && is_seq(v)) {
			FOR_ITEMS(l, v, e) {
				if (m->n_masks == 8)
					return fail(l, e, "at most 8 masks", "masks");
				if ((rc = get_str(l, e, "masks", m->masks[m->n_masks],
				                  sizeof(m->masks[0]))))
					return rc;
				m->n_masks++;
			}
		} else
			rc = fail(l, v, "unknown key (name, masks: a list)", k);
		if (rc)
			return rc;
	}
	if (!m->name[0] || !m->n_masks)
		return fail(l, n, "a monitor needs a name and masks", "monitors");
	return 0;
}

static int parse_fault(struct ld *l, struct sim_plan *p, const yaml_node_t *n)
{
	if (!is_map(n))
		return fail(l, n, "expected {at_ms, kind, ...}", "faults");
	struct sim_fault f = {0};
	bool have_kind = false, have_at = false;
	const char *k;
	yaml_node_t *v;
	int rc = 0;
	uint64_t x;
	FOR_PAIRS(l, n, k, v) {
		if (!k)
			rc = fail(l, n, "keys are strings", "faults");
		else if (!strcmp(k, "at_ms")) {
			rc = get_u64(l, v, k, 86400000ull * 365, &x);
			f.at_ns = x * SIM_MS;
			have_at = true;
		} else if (!strcmp(k, "for_ms") || !strcmp(k, "down_ms")) {
			rc = get_u64(l, v, k, 86400000ull, &x);
			f.for_ns = x * SIM_MS;
		} else if (!strcmp(k, "ms")) {
			rc = get_u64(l, v, k, 60000, &f.ms);
		} else if (!strcmp(k, "target")) {
			rc = get_str(l, v, k, f.target, sizeof(f.target));
		} else if (!strcmp(k, "kind")) {
			const char *s = scalar(v);
			for (int i = 0; s && i < SIM_F_KINDS; i++)
				if (!strcmp(s, sim_fault_names[i]))
					f.kind = (enum sim_fault_kind)i, have_kind = true;
			if (!have_kind)
				rc = fail(l, v, "unknown fault kind", k);
		} else
			rc = fail(l, v, "unknown key (at_ms, kind, for_ms, down_ms, "
			                "ms, target)", k);
		if (rc)
			return rc;
	}
	if (!have_kind || !have_at)
		return fail(l, n, "a fault needs at_ms and kind", "faults");
	if (f.kind != SIM_F_DELAY) /* ms is a delay's alone (files saved
	                              before printed it for every kind) */
		f.ms = 0;
	struct sim_fault *fs = realloc(p->v, (p->n + 1) * sizeof(*fs));
	if (!fs)
		return fail(l, n, "out of memory", NULL);
	p->v = fs;
	p->v[p->n++] = f;
	return 0;
}

static int parse_faults(struct ld *l, struct sim_plan *p, const yaml_node_t *v)
{
	yaml_node_t *e;
	int rc;
	if (!is_seq(v))
		return fail(l, v, "expected a list of faults", "faults");
	FOR_ITEMS(l, v, e) if ((rc = parse_fault(l, p, e))) return rc;
	return 0;
}

static int parse_agent(struct ld *l, struct sim_scenario *s,
                       const yaml_node_t *n)
{
	const char *k;
	yaml_node_t *v;
	struct de_policies *p = &s->policies;
	if (!is_map(n))
		return fail(l, n, "expected a mapping", "agent");
	FOR_PAIRS(l, n, k, v) {
		uint64_t x;
		int rc = get_u64(l, v, k, 3600000, &x);
		if (rc)
			return rc;
		if (!strcmp(k, "heartbeat_ms"))
			p->heartbeat_interval_ns = x * SIM_MS;
		else if (!strcmp(k, "heartbeat_timeout_ms"))
			p->heartbeat.timeout_ns = x * SIM_MS;
		else if (!strcmp(k, "dead_after"))
			p->heartbeat_dead_after = (uint32_t)(x ? x : 1);
		else if (!strcmp(k, "restart_delay_ms"))
			p->restart_delay_ns = x * SIM_MS;
		else if (!strcmp(k, "health_check_ms"))
			p->health_check_interval_ns = x * SIM_MS;
		else
			return fail(l, v, "unknown key (heartbeat_ms, "
			                  "heartbeat_timeout_ms, dead_after, "
			                  "restart_delay_ms, health_check_ms)", k);
	}
	return 0;
}

static int parse_broker(struct ld *l, struct sim_scenario *s,
                        const yaml_node_t *n)
{
	const char *k;
	yaml_node_t *v;
	if (!is_map(n))
		return fail(l, n, "expected a mapping", "broker");
	FOR_PAIRS(l, n, k, v) {
		uint64_t x;
		if (k && !strcmp(k, "queue_policy")) {
			if (bus_slow_policy_parse(scalar(v), &s->slow_policy))
				return fail(l, v, "block, disconnect or drop_newest",
				            k);
		} else if (k && !strcmp(k, "queue_frames_max")) {
			int rc = get_u64(l, v, k, 100000000, &x);
			if (rc)
				return rc;
			s->queue_frames_max = (uint32_t)(x < 2 ? 2 : x);
		} else
			return fail(l, v, "unknown key (queue_policy, "
			                  "queue_frames_max)", k);
	}
	return 0;
}

const char *const sim_site_names[BUS_SITE_N] = {
	"core.alloc", "core.queue_full", "core.write_one",
	"client.alloc", "client.out_full", "net.one_byte",
};

int sim_sites_print(FILE *f, uint32_t mask, const char *sep)
{
	int n = 0;
	for (int k = 0; k < BUS_SITE_N; k++)
		if (mask & 1u << k)
			fprintf(f, "%s%s", n++ ? sep : "", sim_site_names[k]);
	return n;
}

int sim_site_by_name(const char *name)
{
	for (int i = 0; i < BUS_SITE_N; i++)
		if (name && !strcmp(name, sim_site_names[i]))
			return i;
	return -1;
}

/* buggify: [site, ...] — the fault sites a saved failure ran with. */
static int parse_buggify(struct ld *l, struct sim_scenario *s,
                         const yaml_node_t *n)
{
	yaml_node_t *e;
	if (!is_seq(n))
		return fail(l, n, "expected a list of fault sites", "buggify");
	s->has_buggify = true;
	FOR_ITEMS(l, n, e) {
		int k = sim_site_by_name(scalar(e));
		if (k < 0)
			return fail(l, e, "unknown fault site (core.alloc, "
			                  "core.queue_full, core.write_one, client.alloc, "
			                  "client.out_full, net.one_byte)", "buggify");
		s->buggify |= 1u << k;
	}
	return 0;
}

static int parse_top(struct ld *l, struct sim_scenario *s, const yaml_node_t *r)
{
	const char *k;
	yaml_node_t *v, *e;
	int rc = 0;
	uint64_t x, version = 0;
	if (!is_map(r))
		return fail(l, r, "expected a mapping", "(top)");
	FOR_PAIRS(l, r, k, v) {
		if (!k)
			rc = fail(l, r, "keys are strings", "(top)");
		else if (!strcmp(k, "version")) {
			rc = get_u64(l, v, k, 1000, &version);
			if (!rc && version != 1)
				rc = fail(l, v, "this simulator reads version 1", k);
		} else if (!strcmp(k, "name"))
			rc = get_str(l, v, k, s->name, sizeof(s->name));
		else if (!strcmp(k, "description"))
			rc = scalar(v) ? 0 : fail(l, v, "expected a string", k);
		else if (!strcmp(k, "duration_ms")) {
			rc = get_u64(l, v, k, 86400000, &x);
			s->duration_ns = x * SIM_MS;
		} else if (!strcmp(k, "liveness_ms")) {
			rc = get_u64(l, v, k, 3600000, &x);
			s->liveness_ns = x * SIM_MS;
		} else if (!strcmp(k, "topology")) {
			const char *t = scalar(v);
			if (t && !strcmp(t, "embedded"))
				s->topology = SIM_EMBEDDED;
			else if (t && !strcmp(t, "standalone"))
				s->topology = SIM_STANDALONE;
			else
				rc = fail(l, v, "expected embedded or standalone", k);
		} else if (!strcmp(k, "broker"))
			rc = parse_broker(l, s, v);
		else if (!strcmp(k, "agent"))
			rc = parse_agent(l, s, v);
		else if (!strcmp(k, "collectors")) {
			if (!is_seq(v))
				rc = fail(l, v, "expected a list", k);
			else
				FOR_ITEMS(l, v, e) if ((rc = parse_collector(l, s, e))) break;
		} else if (!strcmp(k, "monitors")) {
			if (!is_seq(v))
				rc = fail(l, v, "expected a list", k);
			else
				FOR_ITEMS(l, v, e) if ((rc = parse_monitor(l, s, e))) break;
		} else if (!strcmp(k, "faults")) {
			rc = parse_faults(l, &s->plan, v);
			s->has_plan = true;
		} else if (!strcmp(k, "expect"))
			rc = 0; /* informative for people; the checks decide */
		else if (!strcmp(k, "seed")) {
			rc = get_u64(l, v, k, UINT64_MAX, &s->seed);
			s->has_seed = true;
		} else if (!strcmp(k, "plant"))
			rc = get_str(l, v, k, s->plant, sizeof(s->plant));
		else if (!strcmp(k, "buggify"))
			rc = parse_buggify(l, s, v);
		else
			rc = fail(l, v, "unknown key", k);
		if (rc)
			return rc;
	}
	if (version != 1)
		return fail(l, r, "missing version: 1", "version");
	if (!s->n_collectors)
		return fail(l, r, "a scenario needs at least one collector",
		            "collectors");
	if (!s->duration_ns)
		return fail(l, r, "a scenario needs duration_ms", "duration_ms");
	return 0;
}

/* Parses text (or, when text is NULL, the file at path) into l->doc,
 * within the size and depth limits. */
static int load(const char *path, const char *text, size_t len, struct ld *l,
                char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->path = path;
	l->err = err;
	l->errlen = errlen;
	char *buf = NULL;
	if (!text) {
		FILE *f = fopen(path, "rb");
		struct stat st;
		if (!f) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return 2;
		}
		if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_size > SCENARIO_BYTES_MAX) {
			snprintf(err, errlen, "%s: not a regular file of at most "
			         "%u MiB", path, SCENARIO_BYTES_MAX >> 20);
			fclose(f);
			return 2;
		}
		buf = malloc((size_t)st.st_size + 1);
		len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
		bool bad = !buf || ferror(f);
		fclose(f);
		if (bad) {
			snprintf(err, errlen, "%s: %s", path,
			         buf ? "read error" : "out of memory");
			free(buf);
			return 2;
		}
		text = buf;
	} else if (len > SCENARIO_BYTES_MAX) {
		snprintf(err, errlen, "%s: over %u MiB", path,
		         SCENARIO_BYTES_MAX >> 20);
		return 2;
	}
	if (bus_yaml_depth_check(text, len, path, SCENARIO_DEPTH_MAX, err,
	                         errlen)) {
		free(buf);
		return 2;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int rc = 0;
	if (!yaml_parser_load(&parser, &l->doc)) {
		snprintf(err, errlen, "%s:%zu: YAML error: %s", path,
		         parser.problem_mark.line + 1,
		         parser.problem ? parser.problem : "unknown");
		rc = 2;
	} else if (!yaml_document_get_root_node(&l->doc)) {
		snprintf(err, errlen, "%s: empty", path);
		yaml_document_delete(&l->doc);
		rc = 2;
	}
	yaml_parser_delete(&parser);
	free(buf);
	return rc;
}

static int scenario_load(const char *path, const char *text, size_t len,
                         struct sim_scenario *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "%s", path);
	de_policies_defaults(&s->policies);
	/* the simulator's defaults: the agent's timings scaled down */
	s->policies.heartbeat_interval_ns = 1 * SIM_S;
	s->policies.heartbeat.timeout_ns = 300 * SIM_MS;
	s->policies.restart_delay_ns = 200 * SIM_MS;
	s->policies.restart_delay_max_ns = 2 * SIM_S;
	s->policies.stop_timeout_ns = 1 * SIM_S;
	s->policies.health.timeout_ns = 1 * SIM_S;
	s->policies.health_check_interval_ns = 2 * SIM_S;
	s->liveness_ns = 10 * SIM_S;
	s->queue_frames_max = 10000;
	s->slow_policy = BUS_SLOW_BLOCK; /* the broker's default */
	struct ld l;
	int rc = load(path, text, len, &l, err, errlen);
	if (rc)
		return rc;
	rc = parse_top(&l, s, yaml_document_get_root_node(&l.doc));
	yaml_document_delete(&l.doc);
	/* the pool's strings belong to the tables now: keep them in the
	 * scenario by chaining the pool behind its first collector */
	s->pool = l.pool;
	s->pool_n = l.pool_n;
	if (rc)
		sim_scenario_free(s);
	return rc;
}

int sim_scenario_load(const char *path, struct sim_scenario *s, char *err,
                      size_t errlen)
{
	return scenario_load(path, NULL, 0, s, err, errlen);
}

int sim_scenario_parse(const char *text, size_t len, const char *name,
                       struct sim_scenario *s, char *err, size_t errlen)
{
	return scenario_load(name, text, len, s, err, errlen);
}

void sim_scenario_free(struct sim_scenario *s)
{
	for (size_t i = 0; i < s->n_collectors; i++) {
		free(s->collectors[i].polls);
		free(s->collectors[i].ops);
	}
	free(s->collectors);
	free(s->monitors);
	sim_plan_free(&s->plan);
	for (size_t i = 0; i < s->pool_n; i++)
		free(s->pool[i]);
	free(s->pool);
	s->collectors = NULL;
	s->monitors = NULL;
	s->pool = NULL;
	s->n_collectors = s->n_monitors = s->pool_n = 0;
}

static int plan_load(const char *path, const char *text, size_t len,
                     struct sim_plan *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	struct ld l;
	int rc = load(path, text, len, &l, err, errlen);
	if (rc)
		return rc;
	const yaml_node_t *r = yaml_document_get_root_node(&l.doc);
	const char *k;
	yaml_node_t *v;
	uint64_t version = 0;
	if (!is_map(r))
		rc = fail(&l, r, "expected {version: 1, faults: [...]}", "(top)");
	else
		FOR_PAIRS(&l, r, k, v) {
			if (k && !strcmp(k, "version"))
				rc = get_u64(&l, v, k, 1000, &version);
			else if (k && !strcmp(k, "faults"))
				rc = parse_faults(&l, p, v);
			else
				rc = fail(&l, v, "unknown key (version, faults)", k);
			if (rc)
				break;
		}
	if (!rc && version != 1)
		rc = fail(&l, r, "missing version: 1", "version");
	yaml_document_delete(&l.doc);
	for (size_t i = 0; i < l.pool_n; i++)
		free(l.pool[i]);
	free(l.pool);
	if (rc)
		sim_plan_free(p);
	return rc;
}

int sim_plan_load(const char *path, struct sim_plan *p, char *err,
                  size_t errlen)
{
	return plan_load(path, NULL, 0, p, err, errlen);
}

int sim_plan_parse(const char *text, size_t len, const char *name,
                   struct sim_plan *p, char *err, size_t errlen)
{
	return plan_load(name, text, len, p, err, errlen);
}

void sim_plan_free(struct sim_plan *p)
{
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* faults: and the list, as plan files and saved failures carry it */
static void print_faults(FILE *f, const struct sim_plan *p)
{
	fprintf(f, "faults:%s\n", p && p->n ? "" : " []");
	for (size_t i = 0; p && i < p->n; i++) {
		const struct sim_fault *x = &p->v[i];
		fprintf(f, "  - {at_ms: %llu, kind: %s", 
		        (unsigned long long)(x->at_ns / SIM_MS),
		        sim_fault_names[x->kind]);
		/* each kind's own words (scenarios/README.md): a crash is
		 * down for down_ms; ms is the delay's alone */
		bool crash = x->kind == SIM_F_BROKER_CRASH ||
		             x->kind == SIM_F_AGENT_CRASH;
		if (x->for_ns)
			fprintf(f, ", %s: %llu", crash ? "down_ms" : "for_ms",
			        (unsigned long long)(x->for_ns / SIM_MS));
		if (x->ms && x->kind == SIM_F_DELAY)
			fprintf(f, ", ms: %llu", (unsigned long long)x->ms);
		if (x->target[0]) {
			fprintf(f, ", target: ");
			sim_yq(f, x->target, strlen(x->target));
		}
		fprintf(f, "}\n");
	}
}

void sim_plan_print(FILE *f, const struct sim_plan *p)
{
	fprintf(f, "version: 1\n");
	print_faults(f, p);
}

/* ---- saved failures ---------------------------------------------------------- */
static bool top_key(const char *line, const char *key)
{
	size_t n = strlen(key);
	return !strncmp(line, key, n) && line[n] == ':';
}

/* Opens a failure file and writes its header; NULL (said) on error. */
static FILE *save_open(const char *out_path, const char *why)
{
	FILE *out = fopen(out_path, "w");
	if (!out) {
		fprintf(stderr, "busrt-sim: %s: %s\n", out_path, strerror(errno));
		return NULL;
	}
	fprintf(out, "# a saved failure of busrt-sim: replay with\n"
	             "#   busrt-sim replay %s\n# failed: ", out_path);
	for (const char *p = why; *p; p++)
		fputc(*p == '\n' ? ' ' : *p, out);
	fputc('\n', out);
	return out;
}

static void save_tail(FILE *out, const struct sim_plan *plan, uint64_t seed,
                      const char *plant, uint32_t buggify)
{
	fprintf(out, "seed: %llu\n", (unsigned long long)seed);
	if (plant && plant[0])
		fprintf(out, "plant: %s\n", plant);
	fprintf(out, "buggify: [");
	sim_sites_print(out, buggify, ", ");
	fprintf(out, "]\n");
	print_faults(out, plan);
}

int sim_save_failure(const char *src_path, enum sim_topology topology,
                     const struct sim_plan *plan, uint64_t seed,
                     const char *plant, uint32_t buggify, const char *why,
                     const char *out_path)
{
	FILE *in = fopen(src_path, "r");
	if (!in) {
		fprintf(stderr, "busrt-sim: %s: %s\n", src_path, strerror(errno));
		return 2;
	}
	FILE *out = save_open(out_path, why);
	if (!out) {
		fclose(in);
		return 2;
	}
	/* the scenario, less the keys this file sets; a top-level key's
	 * block runs to the next line that starts in column 0 */
	char line[8192];
	bool skipping = false;
	while (fgets(line, sizeof(line), in)) {
		bool col0 = line[0] != ' ' && line[0] != '\t' && line[0] != '\n' &&
		            line[0] != '#';
		if (col0)
			skipping = top_key(line, "faults") || top_key(line, "seed") ||
			           top_key(line, "plant") || top_key(line, "expect") ||
			           top_key(line, "buggify") || top_key(line, "topology");
		bool old_header = !strncmp(line, "# a saved failure", 17) ||
		                  !strncmp(line, "#   busrt-sim replay", 20) ||
		                  !strncmp(line, "# failed: ", 10);
		if (!skipping && !old_header)
			fputs(line, out);
	}
	fclose(in);
	fprintf(out, "topology: %s\n", sim_topology_names[topology]);
	save_tail(out, plan, seed, plant, buggify);
	int rc = ferror(out) ? 2 : 0;
	fclose(out);
	return rc;
}

/* ---- scenarios in memory: replayed, printed back, reduced (shrink) ----------- */
void sim_replay_init(struct sim_replay *r, const struct sim_collector_spec *cs)
{
	*r = (struct sim_replay){.cs = cs, .at = -1};
}

void sim_replay_free(struct sim_replay *r)
{
	free(r->v);
	*r = (struct sim_replay){.at = -1};
}

/* Where p is, or would go, in the table (pointers: an insert or a delete
 * moves 8 bytes per process after it, not the records). */
static size_t replay_lower(const struct sim_replay *r, const struct sim_proc *p)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_proc(r->v[mid], p) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool replay_has(const struct sim_replay *r, const struct sim_proc *p)
{
	size_t i = replay_lower(r, p);
	return i < r->n && cmp_proc(r->v[i], p) == 0;
}

static void replay_apply(struct sim_replay *r, const struct sim_op *o)
{
	size_t lo = replay_lower(r, &o->p);
	bool here = lo < r->n && cmp_proc(r->v[lo], &o->p) == 0;
	if (o->del) {
		if (!here)
			abort(); /* the loader checked every del */
		memmove(&r->v[lo], &r->v[lo + 1], (r->n - lo - 1) * sizeof(*r->v));
		r->n--;
		return;
	}
	if (!here) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			const struct sim_proc **v = realloc(r->v, cap * sizeof(*v));
			if (!v)
				abort();
			r->v = v;
			r->cap = cap;
		}
		memmove(&r->v[lo + 1], &r->v[lo], (r->n - lo) * sizeof(*r->v));
		r->n++;
	}
	r->v[lo] = &o->p;
}

void sim_replay_seek(struct sim_replay *r, long idx)
{
	if (idx < r->at) {
		r->n = 0;
		r->at = -1;
	}
	while (r->at < idx) {
		const struct sim_poll *pl = &r->cs->polls[++r->at];
		for (size_t i = 0; i < pl->count; i++)
			replay_apply(r, &r->cs->ops[pl->first + i]);
	}
}

void sim_table_snapshot(struct sim_replay *r, long idx,
                        struct de_snapshot *snap)
{
	const struct sim_collector_spec *cs = r->cs;
	sim_replay_seek(r, idx);
	if (de_snapshot_reserve(snap, snap->n + r->n))
		abort();
	for (size_t i = 0; i < r->n; i++) {
		const struct sim_proc *p = r->v[i];
		struct de_proc d = {
			.pid = p->pid, .ppid = p->ppid, .uid = p->uid,
			.start_ticks = p->start,
			.start_time_ms = (int64_t)(p->start * 1000 /
			                           (cs->ticks_per_s ? cs->ticks_per_s : 100)),
			.accessible = true, .file_exists = true,
			.name = p->name, .exe = p->exe, .cmdline = p->cmdline,
			.cmdline_len = p->cmdline_len};
		memcpy(d.hash, p->hash, sizeof(d.hash));
		if (de_snapshot_add(snap, &d))
			abort();
	}
}

const char *const sim_topology_names[2] = {"embedded", "standalone"};

void sim_scenario_print(FILE *f, const struct sim_scenario *s)
{
	const struct de_policies *p = &s->policies;
	fprintf(f, "version: 1\nname: ");
	sim_yq(f, s->name, strlen(s->name));
	fprintf(f, "\nduration_ms: %llu\nliveness_ms: %llu\n",
	        (unsigned long long)(s->duration_ns / SIM_MS),
	        (unsigned long long)(s->liveness_ns / SIM_MS));
	fprintf(f, "topology: %s\n", sim_topology_names[s->topology]);
	fprintf(f, "broker:\n  queue_policy: %s\n  queue_frames_max: %u\n",
	        bus_slow_policy_name(s->slow_policy), s->queue_frames_max);
	fprintf(f, "agent:\n  heartbeat_ms: %llu\n  heartbeat_timeout_ms: %llu\n"
	           "  dead_after: %u\n  restart_delay_ms: %llu\n"
	           "  health_check_ms: %llu\n",
	        (unsigned long long)(p->heartbeat_interval_ns / SIM_MS),
	        (unsigned long long)(p->heartbeat.timeout_ns / SIM_MS),
	        p->heartbeat_dead_after,
	        (unsigned long long)(p->restart_delay_ns / SIM_MS),
	        (unsigned long long)(p->health_check_interval_ns / SIM_MS));
	fprintf(f, "monitors:%s\n", s->n_monitors ? "" : " []");
	for (size_t i = 0; i < s->n_monitors; i++) {
		const struct sim_monitor_spec *m = &s->monitors[i];
		fprintf(f, "  - name: ");
		sim_yq(f, m->name, strlen(m->name));
		fprintf(f, "\n    masks: [");
		for (int k = 0; k < m->n_masks; k++) {
			fprintf(f, "%s", k ? ", " : "");
			sim_yq(f, m->masks[k], strlen(m->masks[k]));
		}
		fprintf(f, "]\n");
	}
	fprintf(f, "collectors:\n");
	for (size_t i = 0; i < s->n_collectors; i++) {
		const struct sim_collector_spec *c = &s->collectors[i];
		fprintf(f, "  - id: %s\n    poll_ms: %llu\n    ticks_per_s: %u\n"
		           "    qos: %s\n    out_kib: %u\n    retain_kib: %llu\n"
		           "    table:%s\n",
		        c->id, (unsigned long long)(c->poll_ns / SIM_MS),
		        c->ticks_per_s, sim_qos_names[c->qos & 3],
		        c->out_bytes_max >> 10,
		        (unsigned long long)(c->retain_bytes_max >> 10),
		        c->n_polls ? "" : " []");
		struct sim_replay r;
		sim_replay_init(&r, c);
		struct de_snapshot prev, cur;
		de_snapshot_init(&prev);
		for (size_t t = 0; t < c->n_polls; t++) {
			de_snapshot_init(&cur);
			sim_table_snapshot(&r, (long)t, &cur);
			sim_write_delta(f, c->polls[t].at_ns / SIM_MS, &prev, &cur,
			                t == 0);
			de_snapshot_free(&prev);
			prev = cur;
		}
		de_snapshot_free(&prev);
		sim_replay_free(&r);
	}
}

static int key_cmp(const void *a, const void *b)
{
	const struct sim_proc_key *x = a, *y = b;
	if (x->collector != y->collector)
		return x->collector < y->collector ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Every process in some table after a poll: one put in that poll, and
 * still there at its end. */
size_t sim_scenario_procs(const struct sim_scenario *s,
                          struct sim_proc_key **out)
{
	size_t n = 0;
	struct sim_proc_key *v = NULL;
	for (size_t c = 0; c < s->n_collectors; c++) {
		const struct sim_collector_spec *cs = &s->collectors[c];
		struct sim_replay r;
		sim_replay_init(&r, cs);
		for (size_t t = 0; t < cs->n_polls; t++) {
			sim_replay_seek(&r, (long)t);
			const struct sim_poll *pl = &cs->polls[t];
			for (size_t i = 0; i < pl->count; i++) {
				const struct sim_op *o = &cs->ops[pl->first + i];
				if (o->del || !replay_has(&r, &o->p))
					continue;
				if (!grow_pow2((void **)&v, n, sizeof(*v))) {
					free(v);
					sim_replay_free(&r);
					*out = NULL;
					return 0;
				}
				v[n++] = (struct sim_proc_key){c, o->p.pid, o->p.start};
			}
		}
		sim_replay_free(&r);
	}
	if (n)
		qsort(v, n, sizeof(*v), key_cmp);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (!u || key_cmp(&v[u - 1], &v[i]))
			v[u++] = v[i];
	*out = v;
	return u;
}

int sim_scenario_reduce(const struct sim_scenario *src, const bool *keep_mon,
                        const bool *keep_col, const bool *keep_proc,
                        struct sim_scenario *out)
{
	struct sim_proc_key *keys;
	size_t nk = sim_scenario_procs(src, &keys);
	*out = *src;
	out->collectors = NULL;
	out->monitors = NULL;
	out->n_collectors = out->n_monitors = 0;
	memset(&out->plan, 0, sizeof(out->plan));
	out->has_plan = false;
	out->pool = NULL; /* the strings stay src's */
	out->pool_n = 0;
	out->monitors = calloc(src->n_monitors ? src->n_monitors : 1,
	                       sizeof(*out->monitors));
	out->collectors = calloc(src->n_collectors ? src->n_collectors : 1,
	                         sizeof(*out->collectors));
	if (!out->monitors || !out->collectors || (src->n_collectors && !keys)) {
		free(keys);
		sim_scenario_free(out);
		return BUS_ENOMEM;
	}
	for (size_t i = 0; i < src->n_monitors; i++)
		if (keep_mon[i])
			out->monitors[out->n_monitors++] = src->monitors[i];
	int rc = 0;
	for (size_t c = 0; c < src->n_collectors && !rc; c++) {
		if (!keep_col[c])
			continue;
		const struct sim_collector_spec *sc = &src->collectors[c];
		struct sim_collector_spec *dc = &out->collectors[out->n_collectors++];
		*dc = *sc;
		dc->n_polls = dc->n_ops = 0;
		dc->polls = calloc(sc->n_polls ? sc->n_polls : 1, sizeof(*dc->polls));
		dc->ops = calloc(sc->n_ops ? sc->n_ops : 1, sizeof(*dc->ops));
		if (!dc->polls || !dc->ops) {
			rc = BUS_ENOMEM;
			break;
		}
		/* a process's changes go with it */
		for (size_t t = 0; t < sc->n_polls; t++) {
			const struct sim_poll *sp = &sc->polls[t];
			struct sim_poll *dp = &dc->polls[dc->n_polls++];
			*dp = (struct sim_poll){.at_ns = sp->at_ns, .first = dc->n_ops};
			for (size_t i = 0; i < sp->count; i++) {
				const struct sim_op *o = &sc->ops[sp->first + i];
				struct sim_proc_key k = {c, o->p.pid, o->p.start};
				struct sim_proc_key *hit =
					bsearch(&k, keys, nk, sizeof(k), key_cmp);
				if (hit && keep_proc[hit - keys])
					dc->ops[dc->n_ops++] = *o;
			}
			dp->count = dc->n_ops - dp->first;
		}
	}
	free(keys);
	if (rc)
		sim_scenario_free(out);
	return rc;
}

int sim_save_reduced(const struct sim_scenario *sc, const struct sim_plan *plan,
                     uint64_t seed, const char *plant, uint32_t buggify,
                     const char *why, const char *out_path)
{
	FILE *out = save_open(out_path, why);
	if (!out)
		return 2;
	sim_scenario_print(out, sc);
	save_tail(out, plan, seed, plant, buggify);
	int rc = ferror(out) ? 2 : 0;
	fclose(out);
	return rc;
}
