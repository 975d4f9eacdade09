/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prom.h — the Prometheus text exposition format (version 0.0.4) of the
 * broker's statistics. One renderer reads the MessagePack the broker
 * already gives (.broker stats, topic.stats, control/broker/stats), so
 * the HTTP endpoint (broker.metrics.listen) and busrt-cli broker stats
 * --prometheus print the same text. Names: busrt_broker_<stat> with
 * _total on counters, busrt_broker_uptime_seconds, busrt_broker_limit
 * {limit="..."}, busrt_topic_<field>{topic="..."} (README: Metrics).
 */
#ifndef BUS_PROM_H
#define BUS_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BUS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes the families of a stats map (stats, n) and of a topic.stats map
 * (topics, tn; NULL when stats holds topic_stats, or for none) to f.
 * 0, or BUS_EPROTO when stats is not one MessagePack map (nothing
 * written). */
int bus_prom_broker(FILE *f, const uint8_t *stats, size_t n,
                    const uint8_t *topics, size_t tn);

/* The pieces, for other families (the agent's RPC metrics): a family's
 * # HELP and # TYPE lines (type counter, gauge, histogram, untyped), and
 * a label value escaped as the format wants (\\, \", \n). */
void bus_prom_family(FILE *f, const char *name, const char *type,
                     const char *help);
void bus_prom_label_value(FILE *f, const char *s, size_t len);

/* The RPC metrics of a client (client.h) as busrt_rpc_* families with
 * labels target and method (errors also code): calls, ok, errors,
 * timeouts, retries counters and busrt_rpc_latency_seconds, a histogram
 * at every other power of two of the client's buckets (1 us, 4 us, ...
 * 67 s, +Inf: each an exact bucket edge). The "other" row carries
 * overflow="true" instead of target and method. */
struct bus_rpc_metrics;
void bus_prom_rpc(FILE *f, const struct bus_rpc_metrics *t);

#endif
