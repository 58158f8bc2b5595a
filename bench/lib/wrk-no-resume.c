/*
 * LD_PRELOAD shim for wrk: never resume a TLS session.
 *
 * wrk reuses one SSL object per connection slot: on reconnect it calls SSL_shutdown() and
 * SSL_clear(), which keeps the last session, so the next SSL_connect() offers it (a TLS 1.2
 * session id or ticket, a TLS 1.3 PSK) and a server that issues tickets resumes it. With
 * `Connection: close` that makes nearly every handshake a resumption. This wrapper drops the
 * session after SSL_clear(), so every connection does a full handshake.
 *
 * Built by bench/lib/tls.ts with `cc -shared -fPIC -O2 -o wrk-no-resume.so wrk-no-resume.c -ldl`;
 * needs no OpenSSL headers (the two functions are looked up with dlsym).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

int SSL_clear(SSL *s) {
    static int (*real_clear)(SSL *);
    static int (*set_session)(SSL *, SSL_SESSION *);
    if (real_clear == NULL) {
        real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
        set_session = (int (*)(SSL *, SSL_SESSION *))dlsym(RTLD_NEXT, "SSL_set_session");
    }
    int r = real_clear(s);
    if (set_session != NULL) set_session(s, NULL);
    return r;
}
