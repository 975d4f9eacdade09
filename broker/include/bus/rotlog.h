/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rotlog.h — an append-only line file rotated by size (the audit trail):
 * opened close-on-exec (children must not inherit it) and mode 0600;
 * past max_bytes after a line, path becomes path.1 (path.1 path.2 ...,
 * keep files in all besides the live one) and a new path is begun.
 */
#ifndef BUS_ROTLOG_H
#define BUS_ROTLOG_H

#include <stdint.h>
#include <stdio.h>

struct bus_rotlog {
	FILE *f;
	char path[256];
	uint64_t max_bytes; /* 0: never rotated */
	uint32_t keep;      /* old files kept (0: the live file is begun anew) */
	uint64_t size;
	uint64_t rotations;
};

/* 0, or -errno. */
int bus_rotlog_open(struct bus_rotlog *l, const char *path, uint64_t max_bytes,
                    uint32_t keep);
/* After a whole line was written to l->f: flushed, and rotated if due. */
void bus_rotlog_line_done(struct bus_rotlog *l);
void bus_rotlog_close(struct bus_rotlog *l);

/* One line of the audit trail (README: the audit trail), JSON with every
 * string escaped to valid UTF-8 whatever the peer sent:
 * {"time": UTC to the microsecond, "dir": in|out|served|denied,
 *  "sender", "target", "method", "result": 0 or the error code,
 *  "detail"}. Nothing when the log is not open. */
void bus_audit_line(struct bus_rotlog *l, const char *dir, const char *sender,
                    const char *target, const char *method, int code,
                    const char *detail);
/* A broker's refusal (bus_core_ops.audit) as such a line: dir "denied",
 * the client's name, the object refused, the peer's identity and rule. */
struct bus_audit;
void bus_audit_denied(struct bus_rotlog *l, const struct bus_audit *d);

#endif
