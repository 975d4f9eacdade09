/*
 * rotlog.c — the audit trail's file, rotated by size (bus/rotlog.h).
 */
#include "bus/rotlog.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
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
