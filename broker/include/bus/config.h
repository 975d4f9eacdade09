/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h — the broker's YAML configuration (libyaml), in the DaemonEye
 * design's `broker:` shape, extended by our keys (README: Configuration).
 */
#ifndef BUS_CONFIG_H
#define BUS_CONFIG_H

#include "bus/bus.h"
#include "bus/daemoneye.h"

#define BUS_DEFAULT_SOCKET "/run/daemoneye/broker.sock"

struct bus_file_config {
	struct bus_core_config core;
	bool embedded;          /* which section applies (caller's choice) */
	char mode[16];          /* broker.mode as written, "" if absent */
	char socket_path[108];  /* unix socket ("" = none) */
	char address[256];      /* TCP host:port ("" = none) */
	int socket_mode;        /* file mode of the unix socket */
	bool tls_enabled;
	int tls_enabled_line;   /* line of standalone.tls.enabled */
	char tls_cert_file[256], tls_key_file[256], tls_ca_file[256];
	bool tls_verify_client;
	/* the agent (standalone, over TCP) and the collectors it starts:
	 * their client certificate (tls.client_cert_file/client_key_file) */
	char tls_client_cert_file[256], tls_client_key_file[256];
	/* the agent: section (daemoneye-agent); NULL: validated, ignored */
	struct bus_agent_config *agent;
	/* the bridge: section (busrt-bridge); NULL: validated, ignored */
	struct bus_bridge_config *bridge;
	/* broker.acl: absent or "default" (the defaults, built by
	 * bus_config_finish from trusted_group and monitor_group), "open",
	 * or rules */
	enum { BUS_ACL_UNSET, BUS_ACL_OPEN, BUS_ACL_DEFAULT, BUS_ACL_RULES }
	    acl_mode;
	struct bus_acl acl;
	char trusted_group[64]; /* "": "daemoneye" if that group exists */
	/* broker.audit_log: every refusal as a JSON line (bus/rotlog.h),
	 * rotated past audit_max_bytes (64 MiB), audit_keep (4) kept; ""
	 * none (busrtd logs them, at most 10 a second). The agent's embedded
	 * broker writes to the agent's trail instead. */
	char audit_log[256];
	uint64_t audit_max_bytes;
	uint32_t audit_keep;
	/* broker.uid: the uid a client of this file (the agent in standalone
	 * mode) expects the broker to run as; -1: root or its own */
	int64_t broker_uid;
	char monitor_group[64]; /* "": monitors only from trusted peers */
	/* broker.metrics.listen: the Prometheus endpoint's loopback
	 * HOST:PORT ("" = none) */
	char metrics_listen[64];
};

/* daemoneye-agent's own section:
 *
 * agent:
 *   name: daemoneye-agent
 *   audit_log: /var/log/daemoneye/audit.jsonl   ("" = none)
 *   audit_max_bytes: 67108864   # rotated past this (0: never)
 *   audit_keep: 4               # rotated files kept (audit.jsonl.1 ...)
 *   admins: ['admin.*']         # names that may call lifecycle.* ([]: none)
 *   status_interval_ms: 10000   # control/agent/status so often (0: off),
 *                               # and at each collector state change
 *   events: all                 # all: events/#; advertised: the event
 *                               # topics the collectors' capabilities name
 *   bridge: false               # true: busrt-bridge in the agent (the
 *                               # bridge: section); acknowledged = stored
 *   heartbeat: { interval_ms, timeout_ms, retries, dead_after }
 *   restart:   { delay_ms, delay_max_ms, stop_timeout_ms }
 *   rpc: { lifecycle|health|config:
 *          { timeout_ms, retries, backoff_ms, backoff_max_ms, total_ms } }
 *   collectors:
 *     - id: procmond-1            # bus name collector.<type>.<id>
 *       type: process
 *       command: [build/bin/procmond]  # argv; the agent adds --connect,
 *                                      # --id, --interval-ms, --no-hash
 *       scan_interval_ms: 1000
 *       compute_hashes: true
 *       max_processes: 0
 *       enabled: true               # started with the agent
 */
#define BUS_COLLECTOR_ARGS_MAX 16
#define BUS_AGENT_ADMINS_MAX 8
struct bus_collector_config {
	char id[DE_ID_BYTES_MAX], type[DE_TYPE_BYTES_MAX];
	char argv[BUS_COLLECTOR_ARGS_MAX][256];
	uint32_t argc;
	uint32_t scan_interval_ms;
	uint32_t max_processes;
	bool compute_hashes;
	bool enabled;
};
struct bus_agent_config {
	char name[DE_BUS_NAME_BYTES_MAX];
	char audit_log[256];
	uint64_t audit_max_bytes;
	uint32_t audit_keep;
	char admins[BUS_AGENT_ADMINS_MAX][DE_BUS_NAME_BYTES_MAX];
	uint32_t n_admins;
	uint64_t status_interval_ns; /* control/agent/status (10 s; 0 off) */
	/* agent.events: all (events/#, the default) or advertised (exactly
	 * the event topics its collectors' capabilities name) */
	bool events_advertised;
	/* agent.bridge: the bridge to NATS JetStream runs in the agent (the
	 * file's bridge: section), and a collector's events are
	 * acknowledged to it only once JetStream stored them */
	bool bridge;
	struct de_policies policies;
	struct bus_collector_config collectors[DE_COLLECTORS_MAX];
	size_t n_collectors;
};
void bus_agent_config_defaults(struct bus_agent_config *a);

/* busrt-bridge's section: our broker's frames into NATS JetStream.
 *
 * bridge:
 *   name: daemoneye-bridge        # its bus name
 *   connect: ""                   # the broker ("": the default socket)
 *   host: ""                      # subject token ("": the host name)
 *   subject_prefix: daemoneye     # subjects PREFIX.HOST.topic.levels
 *   masks: ['events/#']           # what it subscribes
 *   nats:
 *     urls: ['nats://127.0.0.1:4222']   # tls:// for TLS
 *     creds_file: ""              # a NATS .creds file (JWT and NKey)
 *     tls: { ca_file, cert_file, key_file }
 *   stream: { name: DAEMONEYE, create: true,   # created if missing, on
 *             duplicate_window_ms: 120000 }    # PREFIX.> (file storage)
 *   window: { frames: 65536, mib: 64 }  # taken, not yet stored: past
 *                                       # it the bridge stops reading
 *   ack_timeout_ms: 10000         # no PubAck: published again
 *   drain_timeout_ms: 5000        # at exit, waiting for the window
 */
#define BUS_BRIDGE_MASKS_MAX 16
#define BUS_BRIDGE_URLS_MAX 8
struct bus_bridge_config {
	char name[DE_BUS_NAME_BYTES_MAX];
	char connect[256];
	char host[64];
	char subject_prefix[64];
	char masks[BUS_BRIDGE_MASKS_MAX][256];
	uint32_t n_masks;
	char urls[BUS_BRIDGE_URLS_MAX][256];
	uint32_t n_urls;
	char creds_file[256];
	char tls_ca_file[256], tls_cert_file[256], tls_key_file[256];
	char stream[64];
	bool create_stream;
	uint64_t duplicate_window_ms;
	uint64_t window_frames, window_mib;
	uint64_t ack_timeout_ms, drain_timeout_ms;
};
void bus_bridge_config_defaults(struct bus_bridge_config *b);

/* Defaults for the embedded or the standalone deployment. */
void bus_config_defaults(struct bus_file_config *cfg, bool embedded);
/* After defaults, load and overrides: builds the default ACL unless
 * another was configured (trusted: this process's uid, root, and
 * trusted_group) and points cfg->core.acl at the ACL (NULL: open). 0, or
 * BUS_ECONFIG with err (a group that does not exist). */
int bus_config_finish(struct bus_file_config *cfg, char *err, size_t errlen);
/* Appends the default ACL's rules to acl (README: the defaults): trusted
 * is root, uid me, and trusted_gid if not NULL; monitors also come from
 * monitor_gid if not NULL. 0 or BUS_ENOMEM. */
int bus_acl_defaults(struct bus_acl *acl, uint32_t me,
                     const uint32_t *trusted_gid, const uint32_t *monitor_gid);
/* Frees what a configuration holds (its ACL). */
void bus_config_free(struct bus_file_config *cfg);
/* Loads path over cfg (which holds defaults). Returns 0, or BUS_ECONFIG /
 * BUS_EIO with err naming the file, line and key. */
int bus_config_load(const char *path, struct bus_file_config *cfg, char *err,
                    size_t errlen);
/* The same from memory; name stands for the file in messages. */
int bus_config_parse(const char *text, size_t len, const char *name,
                     struct bus_file_config *cfg, char *err, size_t errlen);
/* Refuses YAML nested deeper than depth_max before any document is
 * built: libyaml's event parser is run until the first event past it
 * (its scanner costs O(depth) per token, so deep nesting costs its depth
 * squared: a 64 KiB file of brackets took 12 s). 0, or BUS_ECONFIG with
 * err naming the file and line (a YAML error, too, is reported). */
#define BUS_CONFIG_DEPTH_MAX 8u /* the configuration's schema uses 5 */
int bus_yaml_depth_check(const char *text, size_t len, const char *name,
                         unsigned depth_max, char *err, size_t errlen);
/* Parses "5", "0.5" seconds into ns; false if not a positive number. */
bool bus_config_parse_seconds(const char *s, uint64_t *ns);
/* Parses a decimal unsigned integer within [min, max]. */
bool bus_config_parse_u64(const char *s, uint64_t min, uint64_t max,
                          uint64_t *out);

#endif
