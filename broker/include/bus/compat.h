/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compat.h — the design's Phase 1 compatibility layer: the crossbeam event
 * bus DaemonEye has today, and the same API carried by the broker.
 *
 * bus_chan is the in-process bounded MPMC channel being replaced (and the
 * simulator's oracle): send blocks while the channel is full, recv while it
 * is empty; after close, send fails and recv drains what is left.
 *
 * de_compat gives that send(event) / recv() surface over BUS/RT: send maps
 * the event's kind to the topic procmond would use and publishes it; recv
 * returns what its subscription (events/#) delivered. A libuv loop thread
 * owns the two socket clients (publisher, subscriber); callers may be any
 * threads. Per-producer order is kept end to end: a producer's sends enter
 * one FIFO, one publisher drains it, the broker keeps per-publisher order.
 */
#ifndef BUS_COMPAT_H
#define BUS_COMPAT_H

#include <stddef.h>
#include <stdint.h>

/* The event kinds of DaemonEye's CollectionEvent, by topic. */
enum de_kind {
	DE_KIND_PROCESS_ENUMERATION = 0,
	DE_KIND_PROCESS_LIFECYCLE,
	DE_KIND_PROCESS_METADATA,
	DE_KIND_PROCESS_HASH,
	DE_KIND_PROCESS_ANOMALY,
	DE_KIND_NETWORK_CONNECTIONS,
	DE_KIND_FILESYSTEM_OPERATIONS,
	DE_KIND_PERFORMANCE_METRICS,
	DE_KIND_COUNT
};
/* The topic of a kind (NULL if out of range), and back (-1: none). */
const char *de_kind_topic(int kind);
int de_topic_kind(const char *topic);

struct bus_chan_item {
	int kind;
	uint8_t *data; /* malloc'd; ownership moves with the item */
	size_t len;
};

struct bus_chan;
/* capacity >= 1 items. NULL: out of memory. */
struct bus_chan *bus_chan_new(size_t capacity);
/* Blocks while full. 0, or BUS_ECLOSED (the item stays the caller's). */
int bus_chan_send(struct bus_chan *ch, const struct bus_chan_item *it);
/* Never blocks: BUS_EAGAIN when full. */
int bus_chan_try_send(struct bus_chan *ch, const struct bus_chan_item *it);
/* Blocks up to timeout_ms (< 0: forever) while empty. 0, BUS_ETIMEDOUT, or
 * BUS_ECLOSED once closed and drained. */
int bus_chan_recv(struct bus_chan *ch, struct bus_chan_item *out,
                  int64_t timeout_ms);
void bus_chan_close(struct bus_chan *ch);
/* Frees the channel and the data of items still in it. */
void bus_chan_free(struct bus_chan *ch);

struct de_compat;
/* Connects to the broker at addr as NAME.pub and NAME.sub, subscribes
 * events/#, and returns once both are ready (or after timeout_ms with
 * BUS_ETIMEDOUT; err says what failed). */
int de_compat_open(const char *addr, const char *name, size_t capacity,
                   int64_t timeout_ms, struct de_compat **out, char *err,
                   size_t errlen);
/* Copies data; blocks while the send queue is full. 0 or BUS_ECLOSED /
 * BUS_EINVAL (kind) / BUS_ENOMEM. */
int de_compat_send(struct de_compat *c, int kind, const void *data,
                   size_t len);
/* As bus_chan_recv, for what the subscription delivered. */
int de_compat_recv(struct de_compat *c, struct bus_chan_item *out,
                   int64_t timeout_ms);
/* Publishes what is queued, closes both connections, joins the thread. */
void de_compat_close(struct de_compat *c);

#endif
