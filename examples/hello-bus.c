/* SPDX-License-Identifier: Apache-2.0 */
/* hello-bus: the smallest program on libbusrt. It connects to a broker,
 * subscribes to hello/#, publishes one event to hello/world with
 * acknowledgement, prints the event the broker delivers back and exits
 * once both the acknowledgement and the event are in.
 *
 *   cc hello-bus.c $(pkg-config --cflags --libs busrt) -o hello-bus
 *   ./hello-bus /run/daemoneye/busrt.sock
 *
 * Exit status: 0 when the event came back, 1 when something failed (the
 * reason on stderr), 2 on bad usage. */
#include <bus/net.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct hello {
	uv_loop_t loop;
	uv_timer_t deadline;
	struct bus_client *c;
	int status;  /* 1 until the event is back */
	bool closing; /* bus_client_close called, or the client closed */
	bool acked, delivered;
};

static void finish(struct hello *h, int status)
{
	if (h->closing)
		return;
	h->status = status;
	h->closing = true;
	uv_timer_stop(&h->deadline);
	bus_client_close(h->c);
}

static void on_published(struct bus_client *c, int status, void *arg)
{
	struct hello *h = arg;
	if (status != 0) {
		fprintf(stderr, "hello-bus: publish: %s\n", bus_client_reason(c, status));
		finish(h, 1);
		return;
	}
	h->acked = true;
	if (h->delivered)
		finish(h, 0);
}

static void on_subscribed(struct bus_client *c, int status, void *arg)
{
	struct hello *h = arg;
	static const char msg[] = "hello from libbusrt";
	if (status != 0) {
		fprintf(stderr, "hello-bus: subscribe: %s\n", bus_client_reason(c, status));
		finish(h, 1);
		return;
	}
	int rc = bus_client_publish(c, "hello/world", msg, sizeof msg - 1,
	                            BUS_QOS_PROCESSED, on_published, h);
	if (rc != 0) {
		fprintf(stderr, "hello-bus: publish: %s\n", bus_client_reason(c, rc));
		finish(h, 1);
	}
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d, void *arg)
{
	struct hello *h = arg;
	(void)c;
	printf("%s from %s: %.*s\n", d->topic ? d->topic : "(message)", d->sender,
	       (int)d->len, (const char *)d->data);
	h->delivered = true;
	if (h->acked)
		finish(h, 0);
}

static void on_state(struct bus_client *c, enum bus_client_state st, int reason, void *arg)
{
	struct hello *h = arg;
	if (st == BUS_CLIENT_READY) {
		const char *masks[] = {"hello/#"};
		int rc = bus_client_subscribe(c, masks, 1, on_subscribed, h);
		if (rc != 0) {
			fprintf(stderr, "hello-bus: subscribe: %s\n", bus_client_reason(c, rc));
			finish(h, 1);
		}
	} else if (st == BUS_CLIENT_CLOSED && !h->closing) {
		/* reconnect is off: the connection failed or the broker went */
		const char *why = bus_client_net_error(c);
		fprintf(stderr, "hello-bus: %s\n", why ? why : bus_client_reason(c, reason));
		h->closing = true;
		uv_timer_stop(&h->deadline);
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct hello *h = t->data;
	fprintf(stderr, "hello-bus: no answer within 5 s\n");
	finish(h, 1);
}

int main(int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc == 2 ? stdout : stderr, "usage: hello-bus SOCKET|HOST:PORT\n");
		return argc == 2 ? 0 : 2;
	}
	struct hello h = {.status = 1};
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = "hello-bus";
	cfg.reconnect = false;
	struct bus_client_handlers hd = {
		.on_delivery = on_delivery, .on_state = on_state, .arg = &h,
	};
	uv_loop_init(&h.loop);
	uv_timer_init(&h.loop, &h.deadline);
	h.deadline.data = &h;
	uv_timer_start(&h.deadline, on_deadline, 5000, 0);
	int rc = bus_client_open(&h.loop, argv[1], &cfg, &hd, &h.c);
	if (rc != 0) {
		fprintf(stderr, "hello-bus: %s: cannot open a client (%d)\n", argv[1], rc);
		return 1;
	}
	uv_run(&h.loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&h.deadline, NULL);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	uv_loop_close(&h.loop);
	return h.status;
}
