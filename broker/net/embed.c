/* SPDX-License-Identifier: Apache-2.0 */
/*
 * embed.c — addresses, and the embedded deployment: a broker in the
 * caller's loop, configured from the same YAML file busrtd reads.
 */
#include "bus/config.h"
#include "bus/net.h"
#include "netint.h"

#include <stdio.h>
#include <string.h>

/* BUS/RT's rule: these suffixes name a Unix socket, whatever else the
 * address holds. */
static bool unix_suffix(const char *spec)
{
	static const char *const sfx[] = {".sock", ".socket", ".ipc"};
	size_t n = strlen(spec);
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t k = strlen(sfx[i]);
		if (n > k && !strcmp(spec + n - k, sfx[i]))
			return true;
	}
	return false;
}

int bus__addr_parse(const char *spec, struct bus_addr *a, char *err,
                    size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(spec, "tls://", 6)) { /* HOST:PORT after it */
		int rc = bus__addr_parse(spec + 6, a, err, errlen);
		if (rc == 0 && a->is_unix) {
			snprintf(err, errlen, "%s: expected tls://HOST:PORT", spec);
			return -1;
		}
		a->tls = true;
		return rc;
	}
	const char *colon = strrchr(spec, ':');
	if (strchr(spec, '/') || !colon || unix_suffix(spec)) {
		if (!*spec) {
			snprintf(err, errlen, "empty address");
			return -1;
		}
		if (strlen(spec) >= sizeof(a->path)) {
			snprintf(err, errlen,
			         "%s: socket path longer than %zu bytes", spec,
			         sizeof(a->path) - 1);
			return -1;
		}
		a->is_unix = true;
		snprintf(a->path, sizeof(a->path), "%s", spec);
		return 0;
	}
	uint64_t port;
	size_t hl = (size_t)(colon - spec);
	if (hl == 0 || hl >= sizeof(a->host) ||
	    !bus_config_parse_u64(colon + 1, 0, 65535, &port)) {
		snprintf(err, errlen, "%s: expected a socket path or HOST:PORT",
		         spec);
		return -1;
	}
	memcpy(a->host, spec, hl);
	a->host[hl] = '\0';
	if (a->host[0] == '[' && hl > 2 && a->host[hl - 1] == ']') {
		memmove(a->host, a->host + 1, hl - 2);
		a->host[hl - 2] = '\0';
	} else if (strchr(a->host, ':') || a->host[0] == '[') {
		snprintf(err, errlen, "%s: an IPv6 address goes in brackets: "
		                      "[ADDR]:PORT", spec);
		return -1;
	}
	a->port = (int)port;
	return 0;
}

int bus_address_check(const char *spec, char *err, size_t errlen)
{
	struct bus_addr a;
	if (!spec) {
		snprintf(err, errlen, "no address");
		return BUS_EINVAL;
	}
	return bus__addr_parse(spec, &a, err, errlen) ? BUS_EINVAL : 0;
}

int bus_server_listen_with(struct bus_server *s, const char *spec, int mode,
                           const struct bus_tls_config *tls, char *err,
                           size_t errlen)
{
	struct bus_addr a;
	if (bus__addr_parse(spec, &a, err, errlen))
		return BUS_EINVAL;
	if (a.is_unix)
		return bus_server_listen_unix(s, a.path, mode, err, errlen);
	if (a.tls && !tls) {
		snprintf(err, errlen, "%s: TLS needs a certificate and a key "
		                      "(broker.standalone.tls)", spec);
		return BUS_ECONFIG;
	}
	if (tls)
		return bus_server_listen_tls(s, a.host, a.port, tls, err, errlen);
	return bus_server_listen_tcp(s, a.host, a.port, err, errlen);
}

int bus_server_listen(struct bus_server *s, const char *spec, int mode,
                      char *err, size_t errlen)
{
	struct bus_addr a;
	if (bus__addr_parse(spec, &a, err, errlen))
		return BUS_EINVAL;
	if (a.is_unix)
		return bus_server_listen_unix(s, a.path, mode, err, errlen);
	return bus_server_listen_tcp(s, a.host, a.port, err, errlen);
}

static void discard_done(struct bus_server *s, void *arg)
{
	(void)arg;
	bus_server_free(s);
}

int bus_embedded_start(uv_loop_t *loop, const char *config_path,
                       const char *socket_path, struct bus_server **out,
                       char *err, size_t errlen)
{
	struct bus_file_config fc;
	bus_config_defaults(&fc, true);
	snprintf(fc.socket_path, sizeof(fc.socket_path), "%s",
	         BUS_DEFAULT_SOCKET);
	if (config_path) {
		if (bus_config_load(config_path, &fc, err, errlen))
			return BUS_ECONFIG; /* unreadable or invalid: bad input */
	}
	if (socket_path)
		snprintf(fc.socket_path, sizeof(fc.socket_path), "%s",
		         socket_path);
	const char *what;
	if (bus_core_config_check(&fc.core, &what)) {
		snprintf(err, errlen, "inconsistent configuration: %s", what);
		bus_config_free(&fc);
		return BUS_ECONFIG;
	}
	if (bus_config_finish(&fc, err, errlen)) {
		bus_config_free(&fc);
		return BUS_ECONFIG;
	}
	struct bus_server *s;
	struct bus_acl *acl = fc.core.acl ? &fc.acl : NULL;
	fc.core.acl = NULL; /* the server's own copy, below */
	int rc = bus_server_new(loop, &fc.core, &s);
	if (!rc)
		rc = bus_server_set_acl(s, acl);
	bus_config_free(&fc);
	if (rc) {
		if (s)
			bus_server_free(s);
		snprintf(err, errlen, "%s", bus_strerror(rc));
		return rc;
	}
	if ((fc.socket_path[0] &&
	     (rc = bus_server_listen(s, fc.socket_path, fc.socket_mode, err,
	                             errlen))) ||
	    (fc.metrics_listen[0] &&
	     (rc = bus_server_metrics_listen(s, fc.metrics_listen, err,
	                                     errlen)))) {
		/* nothing reached the loop but handles: let them close */
		bus_server_shutdown(s, discard_done, NULL);
		return rc;
	}
	*out = s;
	return 0;
}
