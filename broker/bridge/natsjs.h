/* SPDX-License-Identifier: Apache-2.0 */
/*
 * natsjs.h — the bridge's NATS JetStream side, shared by busrt-bridge and
 * daemoneye-agent (agent.bridge: the bridge embedded in the agent).
 *
 * Frames taken (natsjs_take) wait in the window (bus/bridge.h) until
 * JetStream's PubAck; a publisher thread publishes them asynchronously
 * with their message ids, a failed, timed-out or disconnected publish goes
 * out again, and libnats reconnects forever. Every function is safe to
 * call from the caller's thread while libnats's run; the log callback
 * runs on any of them.
 */
#ifndef BUS_NATSJS_H
#define BUS_NATSJS_H

#include <stdio.h>

#include "bus/bridge.h"
#include "bus/config.h"

struct natsjs;

/* level: 0 error, 1 warn, 2 info, 3 debug */
typedef void (*natsjs_log_fn)(void *arg, int level, const char *msg);

/* The window's configuration from the bridge: section (the host name
 * when bridge.host is empty), checked: 0, or BUS_ECONFIG with err. */
int natsjs_br_config(const struct bus_bridge_config *cfg,
                     struct bus_br_config *out, char *err, size_t errlen);

/* Connects (or keeps trying: NATS need not be up yet) and starts
 * publishing. cfg stays the caller's and must outlive the bridge. 0, or
 * BUS_ECONFIG / BUS_EIO / BUS_ENOMEM with err. */
int natsjs_open(struct natsjs **out, const struct bus_bridge_config *cfg,
                natsjs_log_fn log, void *log_arg, int log_level, char *err,
                size_t errlen);
/* Stops publishing and closes: what the window still holds is lost (the
 * caller drains first: natsjs_stats' pending). */
void natsjs_close(struct natsjs *j);

const char *natsjs_host(const struct natsjs *j);
/* A frame into the window; *paused: past its high-water mark (the caller
 * stops taking more until natsjs_paused says otherwise). 0 or
 * BUS_ENOMEM. */
int natsjs_take(struct natsjs *j, const char *sender, const char *topic,
                const uint8_t *data, size_t len, bool *paused);
bool natsjs_paused(struct natsjs *j);
/* bus_br_stored_through, under the lock. */
uint64_t natsjs_stored_through(struct natsjs *j, const char *sender,
                               uint64_t incarnation, uint64_t upto);

struct natsjs_stats {
	struct bus_br_stats br;
	size_t pending;          /* in the window, not stored */
	uint64_t disconnects, connects;
	bool up;
};
void natsjs_stats(struct natsjs *j, struct natsjs_stats *out);
/* The counts as one JSON line (busrt-bridge's exit line). */
void natsjs_stats_json(FILE *f, const struct natsjs_stats *s,
                       uint64_t not_publish);

/* Every message of cfg's stream as one JSON line on f: seq, subject,
 * msg_id, sender, topic, data (hex). 0, or 1 with err. */
int natsjs_dump(const struct bus_bridge_config *cfg, FILE *f, char *err,
                size_t errlen);

#endif
