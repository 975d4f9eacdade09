/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_oom.c — paths only an allocation failure takes, in code that has
 * no allocator hook: this binary is linked with -Wl,--wrap=calloc (the
 * Makefile), so the library's calloc calls come here and can fail on
 * demand, and each block is tracked until it is freed (free is wrapped
 * too).
 *
 * procmond's cycle diff without memory for its marks: every new process
 * still gets its DISCOVERY (in key order, without the parent rule), no
 * slot past the previous table is read, and nothing is leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/daemoneye.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void __real_free(void *p);
void __wrap_free(void *p);

static int fail_next;       /* calloc calls to fail, from the next one */
#define LIVE_MAX 64
static void *live[LIVE_MAX]; /* blocks calloc gave and free has not taken */

void *__wrap_calloc(size_t n, size_t size)
{
	if (fail_next > 0) {
		fail_next--;
		return NULL;
	}
	void *p = __real_calloc(n, size);
	for (int i = 0; p && i < LIVE_MAX; i++)
		if (!live[i]) {
			live[i] = p;
			break;
		}
	return p;
}

void __wrap_free(void *p)
{
	for (int i = 0; p && i < LIVE_MAX; i++)
		if (live[i] == p)
			live[i] = NULL;
	__real_free(p);
}

static int live_blocks(void)
{
	int k = 0;
	for (int i = 0; i < LIVE_MAX; i++)
		k += live[i] != NULL;
	return k;
}

struct seen {
	uint32_t discovered[16];
	int n;
};

static void collect(void *arg, enum de_event_type type, const char *topic,
                    const struct de_proc *p)
{
	(void)topic;
	struct seen *s = arg;
	if (type == DE_DISCOVERY && s->n < 16)
		s->discovered[s->n++] = p->pid;
}

static void add(struct de_snapshot *s, uint32_t pid, uint32_t ppid)
{
	struct de_proc p;
	memset(&p, 0, sizeof(p));
	p.pid = pid;
	p.ppid = ppid;
	p.start_ticks = 100;
	p.name = "p";
	p.exe = "/bin/p";
	p.cmdline = "p";
	p.cmdline_len = 2;
	assert_int_equal(de_snapshot_add(s, &p), 0);
}

static void test_diff_without_memory_for_marks(void **state)
{
	(void)state;
	struct de_procdiff d;
	de_procdiff_init(&d, 100);
	struct de_snapshot s;
	struct seen e = {0};
	de_snapshot_init(&s);
	add(&s, 10, 1);
	de_procdiff_cycle(&d, &s, collect, &e); /* the first table */
	assert_int_equal(e.n, 1);
	assert_true(d.prev.cap >= 3); /* room past the table */
	/* what lies in the previous table's spare room must never be read:
	 * a process 15 there and one equal to a new one (20) */
	struct de_proc ghost = d.prev.v[0];
	ghost.pid = 15;
	d.prev.v[1] = ghost;
	ghost.pid = 20;
	d.prev.v[2] = ghost;

	e.n = 0;
	de_snapshot_init(&s);
	add(&s, 30, 20); /* a new child of a new parent */
	add(&s, 20, 1);
	add(&s, 10, 1);
	int before = live_blocks();
	fail_next = 1; /* the cycle's marks */
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(fail_next, 0); /* that allocation was asked */
	/* key order: no parent rule without the marks, none missing */
	assert_int_equal(e.n, 2);
	assert_int_equal(e.discovered[0], 20);
	assert_int_equal(e.discovered[1], 30);
	assert_int_equal(live_blocks(), before);

	/* with memory again: the marks are freed with the cycle */
	e.n = 0;
	de_snapshot_init(&s);
	add(&s, 10, 1);
	add(&s, 20, 1);
	add(&s, 30, 20);
	add(&s, 40, 30);
	before = live_blocks();
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.discovered[0], 40);
	assert_int_equal(live_blocks(), before);
	de_procdiff_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_without_memory_for_marks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
