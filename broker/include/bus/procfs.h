/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procfs.h — procmond's I/O half: reads the process table from /proc into
 * a de_snapshot (daemoneye.h) and hashes executables with SHA-256
 * (libcrypto), cached by (device, inode, size, mtime, ctime) so an
 * unchanged file is hashed once. With defer set, what the cache misses is
 * left as jobs, hashed by de_procfs_hash_jobs on any thread (procmond: on
 * libuv's work queue, so its loop goes on answering) within a per-cycle
 * budget, and applied by de_procfs_hash_apply. The diff itself is sans-I/O
 * (de_procdiff_cycle).
 */
#ifndef BUS_PROCFS_H
#define BUS_PROCFS_H

#include "bus/daemoneye.h"

#define DE_HASH_CACHE_SLOTS 4096 /* power of two; full: cleared */
#define DE_CMDLINE_BYTES_MAX 8192 /* kept per process */

/* The cache's key is what fstat says of the executable procmond opened
 * and hashed: ctime with the rest, since an unprivileged user can set
 * mtime back (utime) but not ctime. */
struct de_hash_entry {
	uint64_t dev, ino, size, mtime_ns, ctime_ns;
	char hex[65];
	bool used;
};

#define DE_HASH_BYTES_MAX_DEFAULT (64ull << 20)
#define DE_HASH_CYCLE_BYTES_DEFAULT (256ull << 20)

/* An executable to hash: the snapshot's entry idx, and what fstat said of
 * the file when the table was read (it is hashed only if still so). */
struct de_hash_job {
	size_t idx;
	uint32_t pid;
	struct de_hash_entry key;
	int result; /* 0 hashed (key.hex), 1 over the cycle's budget, -1 not */
};

struct de_procfs {
	char root[64];          /* "/proc" */
	bool hashes;            /* compute executable hashes */
	uint64_t hash_bytes_max; /* larger executables: hash_skipped
	                            "too_large" (DE_HASH_BYTES_MAX_DEFAULT) */
	uint64_t hash_cycle_bytes_max; /* hashed per cycle at most; the rest
	                                  next cycle (hash_skipped "budget") */
	bool defer;             /* cache misses become jobs */
	struct de_hash_job *jobs;
	size_t n_jobs, jobs_cap;
	uint32_t ticks_per_s;
	uint64_t page_bytes;
	int64_t boot_time_ms;   /* /proc/stat btime */
	struct de_hash_entry *cache; /* DE_HASH_CACHE_SLOTS */
	size_t cache_used;
	uint64_t hashed, hash_hits, hash_failures, hash_skipped, vanished;
};

/* root NULL: "/proc". Returns 0, or BUS_EIO when root/stat is unreadable
 * (err says why). */
int de_procfs_init(struct de_procfs *f, const char *root, bool hashes,
                   char *err, size_t errlen);
void de_procfs_free(struct de_procfs *f);
/* Reads every process (at most max; 0 = no limit) into s, which must be
 * empty; taken_ns / taken_ms are the caller's. A process that vanishes
 * while being read is left out; one whose entries are not all readable
 * is kept with accessible = false. Returns 0 or BUS_EIO / BUS_ENOMEM. */
int de_procfs_read(struct de_procfs *f, struct de_snapshot *s, size_t max);
/* One process into s (busrt-sim record --netlink reads a process when the
 * kernel says it forked or exec'd): 0 added, 1 gone (or exiting, or not a
 * process), or BUS_ENOMEM. */
int de_procfs_read_one(struct de_procfs *f, uint32_t pid,
                       struct de_snapshot *s);
/* The jobs de_procfs_read left (defer): hashed in order within
 * hash_cycle_bytes_max. Touches only the jobs and the files: any thread. */
void de_procfs_hash_jobs(struct de_procfs *f);
/* Back on the reader's thread: the results into s (the snapshot the
 * jobs were made for, not yet sorted) and the cache; the jobs cleared. */
void de_procfs_hash_apply(struct de_procfs *f, struct de_snapshot *s);
/* SHA-256 of an open file, hex into out[65]: 0 or BUS_EIO. */
int de_sha256_fd(int fd, char out[65]);

#endif
