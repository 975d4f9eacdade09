/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_link.c — the in-memory link (bus/link.h) that the embedded broker,
 * the test host and the simulator share: the per-turn read budget, a
 * client's close held behind its bytes while the broker is not reading,
 * a broker's close losing the write it cut, the dropping hook, deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "memnet.h"

static bool logged(struct mn_link *l, const char *line)
{
	for (int i = 0; i < l->log_n; i++)
		if (strcmp(l->log[i], line) == 0)
			return true;
	return false;
}

static void pair(struct memnet *n, uint32_t budget, int *p, int *s)
{
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	cfg.limits.read_bytes_per_turn_max = budget;
	mn_init(n, &cfg);
	*p = mn_client(n, "pub", NULL);
	*s = mn_client(n, "sub", NULL);
	const char *m[] = {"t/#"};
	assert_int_equal(bus_client_subscribe(mn_cl(n, *s), m, 1, NULL, NULL), 0);
	mn_run(n);
	assert_int_equal(bus_client_state(mn_cl(n, *p)), BUS_CLIENT_READY);
}

/* A write bigger than the turn's budget crosses a budget at a time; the
 * link stays busy (the host's loop must not block) until it is through. */
static void test_budget_per_turn(void **state)
{
	(void)state;
	struct memnet n;
	int p, s;
	pair(&n, 8, &p, &s);
	char big[100];
	memset(big, 'x', sizeof(big));
	assert_int_equal(bus_client_publish(mn_cl(&n, p), "t/a", big,
	                                    sizeof(big), 0, NULL, NULL), 0);
	struct bus_link *l = &n.l[p].link;
	assert_true(bus_link_pump(&n.l[0].link, n.core, 64));
	assert_true(l->c_write);
	assert_int_equal(l->c_off, 8); /* one turn: one budget */
	assert_int_equal(bus_link_next_deadline(l), n.now);
	assert_true(bus_link_pump(&n.l[0].link, n.core, 64));
	assert_int_equal(l->c_off, 16);
	mn_run(&n);
	assert_false(l->c_write);
	assert_false(bus_link_busy(l));
	assert_int_equal(bus_link_next_deadline(l), UINT64_MAX);
	assert_int_equal(n.l[s].log_n, 1);
	mn_free(&n);
}

/* Like a socket's EOF, a client's close reaches the broker after the
 * bytes written before it, and only when the broker reads again: frames
 * it read and has not handled yet (a paused sender's) are not cut. */
static void test_close_after_bytes(void **state)
{
	(void)state;
	struct memnet n;
	int p, s;
	pair(&n, 1 << 16, &p, &s);
	assert_int_equal(bus_client_publish(mn_cl(&n, p), "t/a", "last", 4, 0,
	                                    NULL, NULL), 0);
	bus_client_close(mn_cl(&n, p)); /* the client's own: after its write */
	mn_run(&n);
	assert_true(logged(&n.l[s], "P pub t/a last"));
	assert_int_equal(bus_client_state(mn_cl(&n, p)), BUS_CLIENT_CLOSED);
	assert_null(n.l[p].link.conn);
	mn_free(&n);

	pair(&n, 1 << 16, &p, &s);
	struct bus_link *l = &n.l[p].link;
	bus_link_b_set_reading(l, false); /* as the core pauses a sender */
	bus_client_close(mn_cl(&n, p));
	mn_run(&n);
	assert_true(l->client_close);
	assert_non_null(l->conn); /* held until the broker reads again */
	assert_false(bus_link_busy(l)); /* it waits for the broker, not a turn */
	bus_link_b_set_reading(l, true);
	assert_true(bus_link_busy(l));
	mn_run(&n);
	assert_null(l->conn);
	assert_int_equal(bus_client_state(mn_cl(&n, p)), BUS_CLIENT_CLOSED);
	mn_free(&n);
}

static int dropped;
static bool dropped_with_conn;

static void count_drop(void *arg, const struct bus_link *l)
{
	(void)arg;
	dropped++;
	dropped_with_conn = l->conn != NULL;
}

/* A broker's close is at once: the write it cut does not complete, and
 * the dropping hook sees the link before it breaks. */
static void test_broker_close_and_hook(void **state)
{
	(void)state;
	struct memnet n;
	int p, s;
	pair(&n, 1 << 16, &p, &s);
	struct bus_link *l = &n.l[p].link;
	n.l[p].shape.dropping = count_drop;
	dropped = 0;
	/* a frame the broker refuses closes the connection on its bytes */
	static const uint8_t bad[] = {1, 0, 0, 0, 0x2A, 0, 0, 0, 0};
	struct bus_iov v = {bad, sizeof(bad)};
	bus_link_c_write(l, &v, 1);
	assert_true(bus_link_step(l));
	assert_true(l->broker_close);
	assert_true(l->c_write); /* not completed: it died with the link */
	assert_true(bus_link_busy(l));
	assert_true(bus_link_step(l)); /* the close */
	assert_null(l->conn);
	assert_false(l->c_write);
	assert_int_equal(dropped, 1);
	assert_true(dropped_with_conn);
	mn_run(&n);
	mn_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_per_turn),
		cmocka_unit_test(test_close_after_bytes),
		cmocka_unit_test(test_broker_close_and_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
