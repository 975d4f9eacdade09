/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rotlog.c — the audit trail's file, rotated by size (bus/rotlog.h).
 */
#include "bus/rotlog.h"
#include "bus/bus.h"
#include "bus/json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int reopen(struct bus_rotlog *l)
{
	int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	l->f = fdopen(fd, "a");
	if (!l->f) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct stat st;
	l->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

int bus_rotlog_open(struct bus_rotlog *l, const char *path, uint64_t max_bytes,
                    uint32_t keep)
{
	memset(l, 0, sizeof(*l));
	if (strlen(path) + 12 >= sizeof(l->path))
		return -ENAMETOOLONG;
	memcpy(l->path, path, strlen(path) + 1);
	l->max_bytes = max_bytes;
	l->keep = keep;
	return reopen(l);
}

static void rotate(struct bus_rotlog *l)
{
	fclose(l->f);
	l->f = NULL;
	char from[sizeof(l->path) + 12], to[sizeof(l->path) + 12];
	if (l->keep == 0) {
		unlink(l->path);
	} else {
		for (uint32_t k = l->keep; k > 1; k--) {
			snprintf(from, sizeof(from), "%s.%u", l->path, k - 1);
			snprintf(to, sizeof(to), "%s.%u", l->path, k);
			rename(from, to); /* a missing one: nothing to move */
		}
		snprintf(to, sizeof(to), "%s.1", l->path);
		rename(l->path, to);
	}
	l->rotations++;
	reopen(l); /* failing, lines are lost to the file: f stays NULL */
}

void bus_rotlog_line_done(struct bus_rotlog *l)
{
	if (!l->f)
		return;
	fflush(l->f);
	long at = ftell(l->f);
	l->size = at > 0 ? (uint64_t)at : l->size;
	if (l->max_bytes && l->size >= l->max_bytes)
		rotate(l);
}

void bus_rotlog_close(struct bus_rotlog *l)
{
	if (l->f)
		fclose(l->f);
	l->f = NULL;
}

static json_t *utf8_json(const char *s)
{
	json_t *j = bus_json_string(s, strlen(s));
	return j ? j : json_string("");
}

void bus_audit_line(struct bus_rotlog *l, const char *dir, const char *sender,
                    const char *target, const char *method, int code,
                    const char *detail)
{
	FILE *f = l->f;
	if (!f)
		return;
	char t[40];
	/* one JSON object per line (jansson); peers' strings made valid
	 * UTF-8 first (\xNN for what is not), as bus_json_string does */
	json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:i,s:o}", "time",
	                      bus_utc_now(t, sizeof(t)), "dir", dir, "sender",
	                      utf8_json(sender), "target", utf8_json(target),
	                      "method", utf8_json(method), "result", code,
	                      "detail", utf8_json(detail));
	if (o) {
		json_dumpf(o, f, 0);
		fputc('\n', f);
		json_decref(o);
	}
	bus_rotlog_line_done(l); /* flushed; rotated past the size */
}

void bus_audit_denied(struct bus_rotlog *l, const struct bus_audit *d)
{
	char name[257], obj[1025], detail[256];
	size_t nl = d->name_len < 256 ? d->name_len : 256;
	size_t ol = d->object_len < 1024 ? d->object_len : 1024;
	memcpy(name, d->name, nl);
	name[nl] = 0;
	memcpy(obj, d->object, ol);
	obj[ol] = 0;
	char who[128];
	bus_ident_text(d->ident, who, sizeof(who));
	snprintf(detail, sizeof(detail), "%s; rule %s", who,
	         d->rule[0] ? d->rule : "none");
	bus_audit_line(l, "denied", name, obj, d->what, BUS_RES_ACCESS, detail);
}
