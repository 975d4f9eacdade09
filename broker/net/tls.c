/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.c — TLS for the libuv hosts (netint.h), with OpenSSL driven through
 * memory BIOs: the host hands in the ciphertext it read and sends the
 * ciphertext this produces, so the sans-I/O cores see plaintext only and
 * never know TLS exists.
 */
#include "netint.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first queued OpenSSL error (or what), as text. */
static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
	ERR_clear_error();
}

/* A file we cannot use, named (the key files' errors say which): the
 * system's reason when it cannot be read at all (missing, no permission),
 * else OpenSSL's for what it holds. */
static int file_err(char *err, size_t errlen, const char *key,
                    const char *path)
{
	char why[256];
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, sizeof(why), "%s", uv_strerror(uv_translate_sys_error(errno)));
		ERR_clear_error();
	} else {
		fclose(f);
		ssl_err(why, sizeof(why), "unusable");
	}
	snprintf(err, errlen, "%s %s: %s", key, path, why);
	return -1;
}

SSL_CTX *bus__tls_ctx_new(const struct bus_tls_config *tc, bool server,
                          char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
	                                  : TLS_client_method());
	if (!ctx) {
		ssl_err(err, errlen, "TLS");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* our writes are whole buffers that stay put until written */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	const char *cert = tc ? tc->cert_file : NULL;
	const char *key = tc ? tc->key_file : NULL;
	const char *ca = tc ? tc->ca_file : NULL;
	int bad = 0;
	if (server && (!cert || !*cert || !key || !*key)) {
		snprintf(err, errlen, "a TLS listener needs cert_file and "
		                      "key_file");
		bad = 1;
	} else if (cert && *cert &&
	           SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		bad = file_err(err, errlen, "cert_file", cert);
	} else if (key && *key &&
	           SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		bad = file_err(err, errlen, "key_file", key);
	} else if (cert && *cert && key && *key &&
	           SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "key_file %s does not match cert_file %s",
		         key, cert);
		bad = 1;
	} else if (ca && *ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		bad = file_err(err, errlen, "ca_file", ca);
	} else if (server && tc->verify_client && (!ca || !*ca)) {
		snprintf(err, errlen, "verify_client needs ca_file");
		bad = 1;
	} else if (!server && (!ca || !*ca) &&
	           SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_err(err, errlen, "the system's CA certificates");
		bad = 1;
	}
	if (bad) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (!server)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	else if (tc->verify_client)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		                            SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		                   NULL);
	return ctx;
}

void bus__tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

int bus__tls_start(struct bus_tls *t, SSL_CTX *ctx, bool server,
                   const char *host)
{
	memset(t, 0, sizeof(*t));
	t->ssl = SSL_new(ctx);
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
	if (!t->ssl || !r || !w) {
		SSL_free(t->ssl);
		BIO_free(r);
		BIO_free(w);
		t->ssl = NULL;
		ERR_clear_error();
		return -1;
	}
	SSL_set_bio(t->ssl, r, w); /* the SSL owns them now */
	t->rbio = r;
	t->wbio = w;
	if (server) {
		SSL_set_accept_state(t->ssl);
		return 0;
	}
	SSL_set_connect_state(t->ssl);
	if (host && *host) { /* the certificate must name what we dialled */
		unsigned char ip[16];
		X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
		if (inet_pton(AF_INET, host, ip) == 1 ||
		    inet_pton(AF_INET6, host, ip) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(p, host);
		} else {
			SSL_set_tlsext_host_name(t->ssl, host);
			SSL_set1_host(t->ssl, host);
		}
	}
	SSL_do_handshake(t->ssl); /* the ClientHello, into wbio */
	ERR_clear_error();
	return 0;
}

void bus__tls_free(struct bus_tls *t)
{
	SSL_free(t->ssl); /* and its BIOs */
	t->ssl = NULL;
}

/* After the handshake: the peer's verified certificate CN, if any. */
static void take_cn(struct bus_tls *t)
{
	X509 *peer = SSL_get1_peer_certificate(t->ssl);
	if (!peer)
		return;
	if (SSL_get_verify_result(t->ssl) == X509_V_OK)
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
		                          NID_commonName, t->cn, sizeof(t->cn));
	X509_free(peer);
}

static int fatal(struct bus_tls *t, int rc, char *err, size_t errlen)
{
	t->failed = true;
	long v = SSL_get_verify_result(t->ssl);
	if (v != X509_V_OK && !t->done)
		snprintf(err, errlen, "TLS handshake: certificate: %s",
		         X509_verify_cert_error_string(v));
	else if (SSL_get_error(t->ssl, rc) == SSL_ERROR_ZERO_RETURN)
		snprintf(err, errlen, "TLS: the peer closed the session");
	else
		ssl_err(err, errlen, t->done ? "TLS" : "TLS handshake");
	ERR_clear_error();
	return -1;
}

int bus__tls_feed(struct bus_tls *t, const void *in, size_t n,
                  void (*plain)(void *arg, const uint8_t *p, size_t n),
                  void *arg, bool *ready, char *err, size_t errlen)
{
	*ready = false;
	if (t->failed)
		return -1;
	if (!t->seen_any && n) { /* a TLS record starts 0x16 (handshake) */
		t->seen_any = true;
		if (!t->done && ((const uint8_t *)in)[0] != 0x16 &&
		    SSL_is_server(t->ssl)) {
			t->failed = t->plaintext = true;
			snprintf(err, errlen, "not TLS (plaintext to a TLS port?)");
			return -1;
		}
	}
	if (n && BIO_write(t->rbio, in, (int)n) != (int)n) {
		snprintf(err, errlen, "TLS: out of memory");
		t->failed = true;
		return -1;
	}
	if (!t->done) {
		int rc = SSL_do_handshake(t->ssl);
		if (rc != 1) {
			int e = SSL_get_error(t->ssl, rc);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			return fatal(t, rc, err, errlen);
		}
		t->done = true;
		*ready = true;
		take_cn(t);
		return 0; /* the host connects the core, then feeds again */
	}
	uint8_t buf[16384];
	for (;;) {
		int rc = SSL_read(t->ssl, buf, sizeof(buf));
		if (rc > 0) {
			plain(arg, buf, (size_t)rc);
			if (t->stop)
				return 0;
			continue;
		}
		int e = SSL_get_error(t->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		return fatal(t, rc, err, errlen);
	}
}

static int write_all(struct bus_tls *t, const uint8_t *p, size_t n)
{
	while (n) {
		int rc = SSL_write(t->ssl, p, (int)(n < (1u << 30) ? n : 1u << 30));
		if (rc <= 0) {
			t->failed = true;
			ERR_clear_error();
			return -1;
		}
		p += rc;
		n -= (size_t)rc;
	}
	return 0;
}

int bus__tls_encrypt(struct bus_tls *t, const struct bus_iov *iov, size_t n)
{
	/* small pieces (a frame's header, a short payload) are gathered into
	 * records of up to 16 KiB: a record per piece cost 4x the plaintext
	 * throughput; large ones go as they are */
	uint8_t buf[16384];
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = iov[i].base;
		size_t len = iov[i].len;
		if (used + len > sizeof(buf)) {
			if (used && write_all(t, buf, used))
				return -1;
			used = 0;
		}
		if (len >= sizeof(buf)) {
			if (write_all(t, p, len))
				return -1;
			continue;
		}
		memcpy(buf + used, p, len);
		used += len;
	}
	return used ? write_all(t, buf, used) : 0;
}

/* A write of ciphertext: done(arg, status) when it completes (NULL: one
 * of TLS's own, the handshake's or an alert). */
struct tls_write {
	uv_write_t req;
	uint8_t *buf;
	void (*done)(void *arg, int status);
	void *arg;
};

static void tls_written(uv_write_t *req, int status)
{
	struct tls_write *w = req->data;
	void (*done)(void *, int) = w->done;
	void *arg = w->arg;
	free(w->buf);
	free(w);
	if (done)
		done(arg, status);
}

int bus__tls_send(struct bus_tls *t, uv_stream_t *s,
                  void (*done)(void *arg, int status), void *arg)
{
	size_t n = BIO_ctrl_pending(t->wbio);
	if (!n)
		return 0;
	struct tls_write *w = malloc(sizeof(*w));
	uint8_t *b = malloc(n);
	int got = b && w ? BIO_read(t->wbio, b, (int)n) : -1;
	if (got <= 0) {
		free(b);
		free(w);
		return UV_ENOMEM;
	}
	*w = (struct tls_write){.buf = b, .done = done, .arg = arg};
	w->req.data = w;
	uv_buf_t ub = uv_buf_init((char *)b, (unsigned)got);
	int rc = uv_write(&w->req, s, &ub, 1, tls_written);
	if (rc < 0) {
		free(b);
		free(w);
		return rc;
	}
	return 1;
}
