/* net.h - socket address parsing and listening sockets, shared by the
 * control plane (API, control socket) and the data plane (listeners). */
#ifndef PC_NET_H
#define PC_NET_H

#include <sys/socket.h>

#include "err-t.h"

/* Largest text form of an address with port: "[v6]:65535". */
#define NET_ADDRSTRLEN 64

/* Parse "A.B.C.D:PORT", "[V6]:PORT" or "localhost:PORT" (numeric hosts
 * only, plus "localhost"). PORT 0..65535. Fills 'ss' and 'len'. */
int net_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len, struct err *err);

/* Parse a numeric host ("0.0.0.0", "::1") and a port into 'ss'. */
int net_make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len,
                  struct err *err);

/* Create a non-blocking, close-on-exec TCP socket listening on 'sa', with
 * SO_REUSEADDR, and SO_REUSEPORT when 'reuseport'. '*fd' is owned by the
 * caller. EADDRINUSE gives ERR_CONFLICT "port_in_use". */
int net_listen_tcp(const struct sockaddr *sa, socklen_t len, int reuseport, int backlog, int *fd,
                   struct err *err);

/* Write "host:port" (IPv6 in brackets) of 'sa' into 'buf'. Returns buf. */
char *net_addr_str(const struct sockaddr *sa, char *buf, size_t n);

/* Make 'fd' non-blocking. */
int net_set_nonblock(int fd);

#endif
