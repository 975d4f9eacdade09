/* SPDX-License-Identifier: Apache-2.0 */
/*
 * latency.h — the one latency report of the bench tools (busrt-bench and
 * busrt-peers print the same JSON for bench/run.py): sorts n round-trip
 * times in ns and prints the call count and p50/p99/p99.9 in µs.
 */
#ifndef BENCH_LATENCY_H
#define BENCH_LATENCY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_latencies(uint64_t *lat, uint64_t n)
{
	qsort(lat, n, sizeof(*lat), bench_cmp_u64);
	printf("{\"calls\": %llu, \"p50_us\": %.2f, \"p99_us\": %.2f, "
	       "\"p999_us\": %.2f}\n",
	       (unsigned long long)n, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
	       lat[n * 999 / 1000] / 1e3);
}

#endif
