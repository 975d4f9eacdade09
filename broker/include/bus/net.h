/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net.h — the libuv host of the broker core: Unix-socket and TCP listeners
 * in a caller's uv_loop_t. The host is thin on purpose: everything that
 * decides anything lives in the sans-I/O core (bus.h), which the simulator
 * runs too.
 */
#ifndef BUS_NET_H
#define BUS_NET_H

#include "bus/bus.h"
#include "bus/client.h"
#include <stdio.h>
#include <uv.h>

struct bus_server;

/* Every tool's --version: "PROG 0.1.0 (git DESCRIBE)" and the BUS/RT
 * protocol version, on f. The describe is the checkout's `git describe`
 * at build time, "" for a build outside one (then it is left out). */
void bus_version_print(FILE *f, const char *prog);
const char *bus_version_describe(void);

/* Creates a broker in loop. Returns 0 or a negative BUS_E* code. */
int bus_server_new(uv_loop_t *loop, const struct bus_core_config *cfg,
                   struct bus_server **out);
/* Listens on a Unix socket with file mode (e.g. 0600). An existing socket
 * file is replaced only when a connect to it is refused (stale); a live
 * one gives BUS_EBUSY, a non-socket file BUS_EINVAL. err_text gets a
 * human reason. */
int bus_server_listen_unix(struct bus_server *s, const char *path, int mode,
                           char *err_text, size_t err_len);
/* Listens on TCP host:port (TCP_NODELAY on accepted connections). */
int bus_server_listen_tcp(struct bus_server *s, const char *host, int port,
                          char *err_text, size_t err_len);
/* Listens on TCP host:port with TLS (OpenSSL, TLS 1.2 or later): the
 * handshake comes first (bounded by the core's timeout), then the BUS/RT
 * one. A client that sends plaintext, or fails the handshake, is closed
 * and counted (bus_host_stats tls_plaintext, tls_failures). BUS_ECONFIG
 * when a file cannot be used: err_text names the key and the file. */
int bus_server_listen_tls(struct bus_server *s, const char *host, int port,
                          const struct bus_tls_config *tls, char *err_text,
                          size_t err_len);
/* Whether the files of tls can be used (by a listener when server, else
 * by a tls:// client): 0, or BUS_ECONFIG with err naming the key and the
 * file (tools check before they start: bus_client_open says only
 * BUS_ECONFIG). */
int bus_tls_check(const struct bus_tls_config *tls, bool server, char *err,
                  size_t errlen);
/* Listens on spec: a Unix socket path (it contains '/' or has no ':'), or
 * HOST:PORT / [V6ADDR]:PORT for TCP. A client's address may also be
 * tls://HOST:PORT (cfg->tls). */
int bus_server_listen(struct bus_server *s, const char *spec, int mode,
                      char *err_text, size_t err_len);
/* The same, TLS for TCP when tls is not NULL (every HOST:PORT, and
 * tls://HOST:PORT, which without tls is BUS_ECONFIG). */
int bus_server_listen_with(struct bus_server *s, const char *spec, int mode,
                           const struct bus_tls_config *tls, char *err_text,
                           size_t err_len);

/* The embedded deployment (the DaemonEye default): a broker inside the
 * caller's loop, configured like busrtd from a YAML file (NULL: the
 * embedded defaults) with the broker.embedded section applying, listening
 * on its transport path unless socket_path overrides it ("" = no socket:
 * internal clients only). Stop it with bus_server_shutdown. Returns 0,
 * BUS_ECONFIG (the file is unreadable or invalid), or what listening
 * answered; err_text says which file, line or address and why. */
int bus_embedded_start(uv_loop_t *loop, const char *config_path,
                       const char *socket_path, struct bus_server **out,
                       char *err_text, size_t err_len);

/* An in-process client of this broker: kind "internal", no socket. Its
 * deliveries are handed over after the current core call returns, from
 * the loop. It is closed with bus_client_close (and by the server's
 * shutdown); after its on_state(BUS_CLIENT_CLOSED) the server frees it. */
int bus_server_client_open(struct bus_server *s,
                           const struct bus_client_config *cfg,
                           const struct bus_client_handlers *h,
                           struct bus_client **out);

/* Announces shutdown on .broker/warn, flushes, closes every connection and
 * listener, removes the socket files; done_cb runs when all handles are
 * closed (the loop then has nothing left of the server). */
void bus_server_shutdown(struct bus_server *s,
                         void (*done_cb)(struct bus_server *s, void *arg),
                         void *arg);
/* Frees a server whose shutdown completed. */
void bus_server_free(struct bus_server *s);
struct bus_core *bus_server_core(struct bus_server *s);

struct bus_host_stats {
	uint64_t writes;   /* uv_write calls (one writev each, or more) */
	uint64_t reads;    /* read callbacks with data */
	uint64_t accepts;
	uint64_t refused;  /* connections refused at accept (also in the
	                      core's stats: rejects_accept) */
};
void bus_server_host_stats(const struct bus_server *s,
                           struct bus_host_stats *out);

/* Serves the statistics in the Prometheus text format at
 * http://HOST:PORT/metrics (bus/prom.h), HOST a loopback address (port 0:
 * any; bus_server_metrics_port says which). Closed by the shutdown. 0, or
 * BUS_EINVAL / BUS_EIO / BUS_EBUSY (already listening) with err_text. */
int bus_server_metrics_listen(struct bus_server *s, const char *spec,
                              char *err_text, size_t err_len);
uint16_t bus_server_metrics_port(const struct bus_server *s);
/* Whether spec is a loopback HOST:PORT for it: 0, or BUS_EINVAL with err. */
int bus_metrics_addr_check(const char *spec, char *err, size_t errlen);
/* A host's own families, written after the broker's on every scrape (the
 * agent's RPC metrics); NULL: none. */
void bus_server_set_metrics_extra(struct bus_server *s,
                                  void (*fn)(void *arg, FILE *f), void *arg);

/* Log verbosity of the host: 0 error, 1 warn, 2 info, 3 debug. */
void bus_server_set_log_level(struct bus_server *s, int level);
/* Puts acl in force, taking what it holds (the caller's struct is left
 * empty); NULL: open. The server frees it when replaced or freed. 0, or
 * BUS_ENOMEM (nothing changed). */
int bus_server_set_acl(struct bus_server *s, struct bus_acl *acl);
/* Refusals (bus_audit) go to fn; without it each is a warning in the log
 * (at most 10 a second). */
void bus_server_set_audit(struct bus_server *s,
                          void (*fn)(void *arg, const struct bus_audit *a),
                          void *arg);
/* "error", "warn", "info", "debug" (or "trace", as debug) to 0..3; -1. */
int bus_log_level_parse(const char *name);

/* ---- socket clients ------------------------------------------------------ */
/* A client connecting to address (a Unix socket path, or HOST:PORT) from
 * loop; it connects, and reconnects per cfg, by itself. Close it with
 * bus_client_close: after its on_state(BUS_CLIENT_CLOSED) returns, the
 * host frees it and its handles are closed. */
int bus_client_open(uv_loop_t *loop, const char *address,
                    const struct bus_client_config *cfg,
                    const struct bus_client_handlers *h,
                    struct bus_client **out);
/* Is spec an address bus_client_open and bus_server_listen take: a Unix
 * socket (a path with '/', one ending in .sock, .socket or .ipc, or
 * without ':'), HOST:PORT (an IPv4 address or a host name, resolved at
 * each connect), [IPV6]:PORT, or tls://HOST:PORT? 0, or BUS_EINVAL with
 * err saying what is wrong. */
int bus_address_check(const char *spec, char *err, size_t errlen);
/* Why the last connection attempt or connection of a socket client failed,
 * with the address ("connect /tmp/x.sock: no such file or directory"). */
const char *bus_client_net_error(const struct bus_client *c);
/* A socket client (bus_client_open) stops reading the broker (pause) or
 * reads again. While it does not read, the broker's frames wait in its
 * socket and the broker's queue policy acts (under block, their
 * publishers wait); its own frames (pings) still go out. Holds for the
 * current connection only: a new one reads from its start (its
 * handshake needs it), so pause again once READY if still needed. */
void bus_client_read_pause(struct bus_client *c, bool pause);
/* Why the connection failed, for a log line: the network's words for a
 * network failure, else the library's (BUS_EBUSY: "name already
 * registered"). */
const char *bus_client_reason(const struct bus_client *c, int reason);
/* Syscall-level counters of a socket client's host. */
void bus_client_host_stats(const struct bus_client *c,
                           struct bus_host_stats *out);

#endif
