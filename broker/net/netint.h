/*
 * netint.h — helpers shared by the libuv hosts (broker/net), not public.
 */
#ifndef BUS_NET_NETINT_H
#define BUS_NET_NETINT_H

#include <stdbool.h>
#include <stddef.h>

/* A listen or connect address: a Unix socket path (it contains '/' or has
 * no ':'), or HOST:PORT / [V6ADDR]:PORT. Returns 0, or -1 with err set. */
struct bus_addr {
	bool is_unix;
	char path[108];
	char host[256];
	int port;
};
int bus__addr_parse(const char *spec, struct bus_addr *out, char *err,
                    size_t errlen);

#endif
