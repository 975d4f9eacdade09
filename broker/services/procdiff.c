/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procdiff.c — procmond's collection cycle without the I/O: process tables
 * in, events out (daemoneye.h). procmond feeds it tables read from /proc;
 * the simulator feeds it recorded tables. A process is (pid, start_ticks):
 * a pid reused by a new process is a TERMINATION and a DISCOVERY.
 */
#include "bus/daemoneye.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_MAX (1u << 22) /* processes per table: far above pid_max */

void de_snapshot_init(struct de_snapshot *s)
{
	memset(s, 0, sizeof(*s));
}

/* A process's strings live in one allocation, name first: one malloc and
 * one free per process (three were a tenth of a simulated cycle). */
void de_proc_release(struct de_proc *p)
{
	free(p->name);
	p->name = p->exe = p->cmdline = NULL;
}

int de_snapshot_reserve(struct de_snapshot *s, size_t n)
{
	if (n <= s->cap)
		return 0;
	if (n > SNAPSHOT_MAX)
		return BUS_ELIMIT;
	struct de_proc *v = realloc(s->v, n * sizeof(*v));
	if (!v)
		return BUS_ENOMEM;
	s->v = v;
	s->cap = n;
	return 0;
}

int de_snapshot_add(struct de_snapshot *s, const struct de_proc *p)
{
	if (s->n == s->cap) {
		int rc = de_snapshot_reserve(s, s->cap ? s->cap * 2 : 256);
		if (rc)
			return rc;
	}
	size_t nl = p->name ? strlen(p->name) : 0;
	size_t el = p->exe ? strlen(p->exe) : 0;
	size_t cl = p->cmdline ? p->cmdline_len : 0;
	char *b = malloc(nl + el + cl + 3);
	if (!b)
		return BUS_ENOMEM;
	struct de_proc *d = &s->v[s->n];
	*d = *p;
	d->name = b;
	d->exe = b + nl + 1;
	d->cmdline = d->exe + el + 1;
	d->cmdline_len = cl;
	if (nl)
		memcpy(d->name, p->name, nl);
	d->name[nl] = 0;
	if (el)
		memcpy(d->exe, p->exe, el);
	d->exe[el] = 0;
	if (cl)
		memcpy(d->cmdline, p->cmdline, cl);
	d->cmdline[cl] = 0;
	d->hash[sizeof(d->hash) - 1] = 0;
	s->n++;
	return 0;
}

void de_snapshot_free(struct de_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		de_proc_release(&s->v[i]);
	free(s->v);
	de_snapshot_init(s);
}

static int cmp_key(const struct de_proc *a, const struct de_proc *b)
{
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->start_ticks != b->start_ticks)
		return a->start_ticks < b->start_ticks ? -1 : 1;
	return 0;
}

#define CMP(x, y) ((x) < (y) ? -1 : (x) > (y) ? 1 : 0)
/* A total order: the key, then every other field, so that which of two
 * entries of one process survives de_snapshot_sort does not depend on
 * qsort's order (entries equal in every field are interchangeable). */
static int cmp_proc(const void *pa, const void *pb)
{
	const struct de_proc *a = pa, *b = pb;
	int c = cmp_key(a, b);
	if (!c)
		c = CMP(a->ppid, b->ppid);
	if (!c)
		c = CMP(a->uid, b->uid);
	if (!c)
		c = CMP(a->cpu_ticks, b->cpu_ticks);
	if (!c)
		c = CMP(a->memory_bytes, b->memory_bytes);
	if (!c)
		c = CMP(a->start_time_ms, b->start_time_ms);
	if (!c)
		c = CMP(a->accessible, b->accessible);
	if (!c)
		c = CMP(a->file_exists, b->file_exists);
	if (!c)
		c = strcmp(a->name, b->name);
	if (!c)
		c = strcmp(a->exe, b->exe);
	if (!c)
		c = CMP(a->cmdline_len, b->cmdline_len);
	if (!c)
		c = memcmp(a->cmdline, b->cmdline, a->cmdline_len);
	if (!c)
		c = strcmp(a->hash, b->hash);
	return c;
}

void de_snapshot_sort(struct de_snapshot *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_proc);
	size_t k = 1; /* a process listed twice counts once: keep the first */
	for (size_t i = 1; i < s->n; i++) {
		if (cmp_key(&s->v[k - 1], &s->v[i]) == 0)
			de_proc_release(&s->v[i]);
		else
			s->v[k++] = s->v[i];
	}
	s->n = k;
}

void de_procdiff_init(struct de_procdiff *d, uint32_t ticks_per_s)
{
	memset(d, 0, sizeof(*d));
	de_snapshot_init(&d->prev);
	d->ticks_per_s = ticks_per_s ? ticks_per_s : 100;
}

void de_procdiff_free(struct de_procdiff *d)
{
	de_snapshot_free(&d->prev);
}

static bool metadata_changed(const struct de_proc *a, const struct de_proc *b)
{
	return a->ppid != b->ppid || a->uid != b->uid ||
	       a->accessible != b->accessible ||
	       a->file_exists != b->file_exists || strcmp(a->name, b->name) ||
	       strcmp(a->exe, b->exe) || a->cmdline_len != b->cmdline_len ||
	       memcmp(a->cmdline, b->cmdline, a->cmdline_len);
}

static void cpu_usage(const struct de_procdiff *d, const struct de_snapshot *cur,
                      struct de_proc *now, const struct de_proc *before)
{
	uint64_t dt = cur->taken_ns - d->prev.taken_ns;
	if (cur->taken_ns <= d->prev.taken_ns || now->cpu_ticks < before->cpu_ticks)
		return;
	double busy = (double)(now->cpu_ticks - before->cpu_ticks) / d->ticks_per_s;
	now->cpu_usage = busy / ((double)dt / 1e9) * 100.0;
}

static void emit_hash(de_emit_fn emit, void *arg, const struct de_proc *p,
                      const struct de_proc *before)
{
	if (p->hash[0] && (!before || strcmp(p->hash, before->hash)))
		emit(arg, DE_UPDATE, DE_TOPIC_HASH, p);
}

/* The first index of pid in a sorted table, or n. */
static size_t first_of(const struct de_snapshot *t, uint32_t pid)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

enum { OLD = 0, NEW = 1, DONE = 2 };

/* DISCOVERY of cur->v[j], its new parent's first (bounded: a parent chain
 * deeper than 64 new processes in one cycle is announced in key order). */
static void discover(const struct de_snapshot *cur, uint8_t *mark, size_t j,
                     const char *topic, de_emit_fn emit, void *arg,
                     unsigned depth)
{
	if (mark[j] != NEW)
		return;
	mark[j] = DONE;
	const struct de_proc *p = &cur->v[j];
	for (size_t k = first_of(cur, p->ppid);
	     depth < 64 && k < cur->n && cur->v[k].pid == p->ppid; k++)
		if (cur->v[k].start_ticks <= p->start_ticks)
			discover(cur, mark, k, topic, emit, arg, depth + 1);
	emit(arg, DE_DISCOVERY, topic, p);
	emit_hash(emit, arg, p, NULL);
}

void de_procdiff_cycle(struct de_procdiff *d, struct de_snapshot *cur,
                       de_emit_fn emit, void *arg)
{
	de_snapshot_sort(cur);
	struct de_snapshot *prev = &d->prev;
	uint8_t *mark = calloc(cur->n ? cur->n : 1, 1);
	bool first = d->cycles == 0;
	/* pass 1, in (pid, start) order: what ended, what changed; and which
	 * processes are new */
	size_t i = 0, j = 0; /* i: prev, j: cur; both sorted */
	while (!first && (i < prev->n || j < cur->n)) {
		int c = i == prev->n   ? 1
		        : j == cur->n ? -1
		                      : cmp_key(&prev->v[i], &cur->v[j]);
		if (c < 0) {
			emit(arg, DE_TERMINATION, DE_TOPIC_LIFECYCLE, &prev->v[i++]);
			/* planted: an exited process's metadata after its end */
			if (BUS_PLANTED(d->sim, BUS_PLANT_LIFECYCLE) &&
			    BUS_PLANT_HIT(d->sim))
				emit(arg, DE_UPDATE, DE_TOPIC_METADATA, &prev->v[i - 1]);
		} else if (c > 0) {
			if (mark)
				mark[j] = NEW;
			j++;
		} else {
			struct de_proc *now = &cur->v[j++];
			const struct de_proc *before = &prev->v[i++];
			cpu_usage(d, cur, now, before);
			bool exec = metadata_changed(before, now);
			/* planted: an exec taken for an exit, then its update */
			if (exec && BUS_PLANTED(d->sim, BUS_PLANT_LIFECYCLE) &&
			    BUS_PLANT_HIT(d->sim))
				emit(arg, DE_TERMINATION, DE_TOPIC_LIFECYCLE, before);
			if (exec)
				emit(arg, DE_UPDATE, DE_TOPIC_METADATA, now);
			emit_hash(emit, arg, now, before);
		}
	}
	/* pass 2: discoveries, a new parent before its new children */
	const char *topic = first ? DE_TOPIC_ENUMERATION : DE_TOPIC_LIFECYCLE;
	if (mark) {
		for (j = 0; first && j < cur->n; j++)
			mark[j] = NEW;
		/* planted: newest pid first, no parent first (the depth at
		 * its bound): a new child before its new parent */
		bool planted = BUS_PLANTED(d->sim, BUS_PLANT_CHILD_FIRST) &&
		               BUS_PLANT_HIT(d->sim);
		for (j = cur->n; planted && j-- > 0;)
			discover(cur, mark, j, topic, emit, arg, 64);
		for (j = 0; j < cur->n; j++)
			discover(cur, mark, j, topic, emit, arg, 0);
	} else { /* out of memory: key order, without the parent rule */
		for (i = 0, j = 0; j < cur->n; j++) {
			while (!first && i < prev->n &&
			       cmp_key(&prev->v[i], &cur->v[j]) < 0)
				i++;
			if (first || i == prev->n ||
			    cmp_key(&prev->v[i], &cur->v[j]) != 0) {
				emit(arg, DE_DISCOVERY, topic, &cur->v[j]);
				emit_hash(emit, arg, &cur->v[j], NULL);
			}
		}
	}
	free(mark);
	de_snapshot_free(prev);
	*prev = *cur;
	de_snapshot_init(cur);
	d->cycles++;
}
