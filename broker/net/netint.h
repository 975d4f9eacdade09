/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netint.h — helpers shared by the libuv hosts (broker/net), not public.
 */
#ifndef BUS_NET_NETINT_H
#define BUS_NET_NETINT_H

#include "bus/client.h"

#include <openssl/ssl.h>
#include <uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A listen or connect address: a Unix socket path (it contains '/', ends
 * in .sock, .socket or .ipc as in BUS/RT, or has no ':'), or HOST:PORT
 * (HOST an IPv4 address or a host name) / [V6ADDR]:PORT. Returns 0, or -1
 * with err set. */
struct bus_addr {
	bool is_unix;
	bool tls;        /* tls://HOST:PORT */
	char path[108];
	char host[256];
	int port;
};
int bus__addr_parse(const char *spec, struct bus_addr *out, char *err,
                    size_t errlen);

/* ---- TLS through memory BIOs (tls.c) ----------------------------------
 * A context from the files (server: cert and key required); NULL with err
 * naming the key and the file that is wrong. */
SSL_CTX *bus__tls_ctx_new(const struct bus_tls_config *tc, bool server,
                          char *err, size_t errlen);
void bus__tls_ctx_free(SSL_CTX *ctx);

struct bus_tls {
	SSL *ssl;
	BIO *rbio, *wbio;  /* ciphertext in, ciphertext out (the SSL's) */
	bool done;         /* handshake complete */
	bool failed;
	bool seen_any;
	bool plaintext;    /* the first byte was not a TLS record */
	bool stop;         /* set by the plain callback: stop reading */
	char cn[64];       /* the verified peer certificate's CN, or "" */
};
/* 0, or -1 (out of memory). A client names host (verified against the
 * certificate) and has its ClientHello ready to take. */
int bus__tls_start(struct bus_tls *t, SSL_CTX *ctx, bool server,
                   const char *host);
void bus__tls_free(struct bus_tls *t);
/* Ciphertext read: the handshake goes on (*ready once it completes; the
 * host then feeds again with n = 0 for what came with it), or plaintext
 * goes to plain. 0, or -1 with err (the connection must close). */
int bus__tls_feed(struct bus_tls *t, const void *in, size_t n,
                  void (*plain)(void *arg, const uint8_t *p, size_t n),
                  void *arg, bool *ready, char *err, size_t errlen);
/* Plaintext to send, encrypted into the output. 0 or -1. */
int bus__tls_encrypt(struct bus_tls *t, const struct bus_iov *iov, size_t n);
/* Writes the ciphertext TLS has for the peer to s, as a write of its own
 * (in order with every other write on s); done(arg, status) when it
 * completes (NULL: TLS's own bytes, nothing to report). 1 a write
 * started, 0 nothing to send, or a negative libuv error. */
int bus__tls_send(struct bus_tls *t, uv_stream_t *s,
                  void (*done)(void *arg, int status), void *arg);

/* ---- the Prometheus endpoint (metrics.c) --------------------------------
 * An HTTP server on loopback spec (HOST:PORT; port 0: any) in loop,
 * serving s's statistics at /metrics. 0, or BUS_EINVAL (not a loopback
 * HOST:PORT) / BUS_EIO (cannot listen) with err. */
struct bus_server;
struct bus_metrics;
struct sockaddr_storage;
/* spec as a loopback socket address: 0, or BUS_EINVAL with err. */
int bus__metrics_addr(const char *spec, struct sockaddr_storage *ss,
                      bool *ipv6, char *err, size_t errlen);
int bus__metrics_start(struct bus_server *s, uv_loop_t *loop,
                       const char *spec, struct bus_metrics **out,
                       char *err, size_t errlen);
uint16_t bus__metrics_port(const struct bus_metrics *m);
/* Closes its handles and the server; done(arg) when that is over (m is
 * then freed). */
void bus__metrics_close(struct bus_metrics *m, void (*done)(void *arg),
                        void *arg);
/* The host's families after the broker's (bus_server_set_metrics_extra). */
void bus__server_metrics_extra(struct bus_server *s, FILE *f);

#endif
