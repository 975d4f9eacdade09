/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_compat.c — the crossbeam compatibility layer: the bounded channel's
 * contract, and equivalence: the same events from several producer threads
 * through the in-process channel and through busrtd's core over a real
 * Unix socket arrive with the same contents in the same per-producer order.
 */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/compat.h"
#include "bus/daemoneye.h"
#include "bus/net.h"

static void test_topics(void **state)
{
	(void)state;
	for (int k = 0; k < DE_KIND_COUNT; k++)
		assert_int_equal(de_topic_kind(de_kind_topic(k)), k);
	assert_string_equal(de_kind_topic(DE_KIND_PROCESS_LIFECYCLE),
	                    DE_TOPIC_LIFECYCLE);
	assert_null(de_kind_topic(DE_KIND_COUNT));
	assert_null(de_kind_topic(-1));
	assert_int_equal(de_topic_kind("events/other"), -1);
	assert_int_equal(de_topic_kind(NULL), -1);
}

static struct bus_chan_item item(int kind, const char *s)
{
	struct bus_chan_item it = {kind, (uint8_t *)strdup(s), strlen(s)};
	return it;
}

static void test_chan_contract(void **state)
{
	(void)state;
	assert_null(bus_chan_new(0));
	struct bus_chan *ch = bus_chan_new(2);
	struct bus_chan_item a = item(0, "a"), b = item(1, "b"), c = item(2, "c");
	assert_int_equal(bus_chan_try_send(ch, &a), 0);
	assert_int_equal(bus_chan_send(ch, &b), 0);
	assert_int_equal(bus_chan_try_send(ch, &c), BUS_EAGAIN);
	struct bus_chan_item got;
	assert_int_equal(bus_chan_recv(ch, &got, 0), 0);
	assert_memory_equal(got.data, "a", 1);
	free(got.data);
	assert_int_equal(bus_chan_try_send(ch, &c), 0);
	bus_chan_close(ch);
	struct bus_chan_item d = item(3, "d");
	assert_int_equal(bus_chan_send(ch, &d), BUS_ECLOSED);
	assert_int_equal(bus_chan_try_send(ch, &d), BUS_ECLOSED);
	free(d.data);
	/* closed: what is left drains, then the end */
	assert_int_equal(bus_chan_recv(ch, &got, -1), 0);
	assert_int_equal(got.kind, 1);
	free(got.data);
	assert_int_equal(bus_chan_recv(ch, &got, -1), 0);
	assert_int_equal(got.kind, 2);
	free(got.data);
	assert_int_equal(bus_chan_recv(ch, &got, -1), BUS_ECLOSED);
	bus_chan_free(ch);
	ch = bus_chan_new(1);
	assert_int_equal(bus_chan_recv(ch, &got, 20), BUS_ETIMEDOUT);
	struct bus_chan_item e = item(0, "left");
	bus_chan_send(ch, &e);
	bus_chan_free(ch); /* frees what is still queued */
}

/* ---- equivalence ------------------------------------------------------------------ */
#define PRODUCERS 4
#define EVENTS 5000

struct producer {
	int id;
	struct bus_chan *ch;     /* one of the two */
	struct de_compat *bus;
};

/* Event j of producer i: a BusrtEvent as procmond would send. */
static uint8_t *make_event(int i, int j, int *kind, size_t *len)
{
	static const int kinds[] = {DE_KIND_PROCESS_ENUMERATION,
	                            DE_KIND_PROCESS_LIFECYCLE,
	                            DE_KIND_PROCESS_METADATA,
	                            DE_KIND_PROCESS_HASH};
	*kind = kinds[(i + j) % 4];
	char name[32];
	snprintf(name, sizeof(name), "producer-%d", i);
	struct de_event_source src = {name, 1000 + (uint64_t)i, (uint64_t)j, 0};
	struct de_proc p = {.pid = (uint32_t)(j + 1), .ppid = 1,
	                    .name = "x", .exe = "/bin/x", .cmdline = "",
	                    .accessible = true};
	return de_event_pack(&src, de_kind_topic(*kind),
	                     j % 3 ? DE_UPDATE : DE_DISCOVERY, &p, 1, 42, len);
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	for (int j = 0; j < EVENTS; j++) {
		int kind;
		size_t len;
		uint8_t *b = make_event(p->id, j, &kind, &len);
		if (p->ch) {
			struct bus_chan_item it = {kind, b, len};
			if (bus_chan_send(p->ch, &it) != 0)
				free(b);
		} else {
			if (de_compat_send(p->bus, kind, b, len) != 0)
				abort();
			free(b);
		}
	}
	return NULL;
}

/* What one consumer saw, per producer, in arrival order. */
struct seen {
	struct bus_chan_item v[PRODUCERS][EVENTS];
	int n[PRODUCERS];
};

static void record(struct seen *s, struct bus_chan_item *it)
{
	Daemoneye__BusrtEvent *ev = (void *)bus_pb_unpack(
		&daemoneye__busrt_event__descriptor, it->data, it->len,
		BUS_PB_BUDGET_DEFAULT);
	assert_non_null(ev);
	int i = (int)(ev->incarnation - 1000);
	assert_true(i >= 0 && i < PRODUCERS);
	assert_true(s->n[i] < EVENTS);
	/* the topic it came on is the one its kind maps to */
	assert_string_equal(ev->topic, de_kind_topic(it->kind));
	s->v[i][s->n[i]++] = *it;
	bus_pb_free(&ev->base);
}

static void run_producers(struct bus_chan *ch, struct de_compat *bus,
                          struct seen *s)
{
	pthread_t t[PRODUCERS];
	struct producer p[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (struct producer){i, ch, bus};
		assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
	}
	for (int k = 0; k < PRODUCERS * EVENTS; k++) {
		struct bus_chan_item it;
		int rc = ch ? bus_chan_recv(ch, &it, 10000)
		            : de_compat_recv(bus, &it, 10000);
		assert_int_equal(rc, 0);
		record(s, &it);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
}

struct broker_thread {
	uv_loop_t loop;
	uv_async_t stop;
	struct bus_server *srv;
	pthread_t t;
};

static void srv_down(struct bus_server *s, void *arg)
{
	(void)arg;
	bus_server_free(s);
}

static void on_stop(uv_async_t *a)
{
	struct broker_thread *b = a->data;
	bus_server_shutdown(b->srv, srv_down, NULL);
	uv_close((uv_handle_t *)a, NULL);
}

static void *broker_main(void *arg)
{
	struct broker_thread *b = arg;
	uv_run(&b->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void test_channel_and_bus_are_equivalent(void **state)
{
	(void)state;
	char dir[] = "/tmp/cbXXXXXX", path[64], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/b.sock", dir);
	struct broker_thread b;
	uv_loop_init(&b.loop);
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	assert_int_equal(bus_server_new(&b.loop, &cfg, &b.srv), 0);
	assert_int_equal(bus_server_listen(b.srv, path, 0600, err, sizeof(err)), 0);
	uv_async_init(&b.loop, &b.stop, on_stop);
	b.stop.data = &b;
	assert_int_equal(pthread_create(&b.t, NULL, broker_main, &b), 0);

	struct seen *chan = calloc(1, sizeof(*chan)), *bus = calloc(1, sizeof(*bus));
	struct bus_chan *ch = bus_chan_new(1024);
	run_producers(ch, NULL, chan);
	bus_chan_free(ch);

	struct de_compat *c;
	assert_int_equal(de_compat_open(path, "compat.test", 1024, 5000, &c, err,
	                                sizeof(err)),
	                 0);
	run_producers(NULL, c, bus);
	de_compat_close(c);

	for (int i = 0; i < PRODUCERS; i++) {
		assert_int_equal(chan->n[i], EVENTS);
		assert_int_equal(bus->n[i], EVENTS);
		for (int j = 0; j < EVENTS; j++) {
			struct bus_chan_item *x = &chan->v[i][j], *y = &bus->v[i][j];
			assert_int_equal(x->kind, y->kind);
			assert_int_equal(x->len, y->len);
			assert_memory_equal(x->data, y->data, x->len);
			free(x->data);
			free(y->data);
		}
	}
	free(chan);
	free(bus);
	/* a broker that is not there: a clear error, in bounded time */
	char nowhere[96];
	snprintf(nowhere, sizeof(nowhere), "%s/none.sock", dir);
	assert_int_equal(de_compat_open(nowhere, "compat.none", 4, 300, &c, err,
	                                sizeof(err)),
	                 BUS_ETIMEDOUT);
	assert_non_null(strstr(err, "none.sock"));
	uv_async_send(&b.stop);
	pthread_join(b.t, NULL);
	uv_loop_close(&b.loop);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topics),
		cmocka_unit_test(test_chan_contract),
		cmocka_unit_test(test_channel_and_bus_are_equivalent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
