#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "net.h"

int net_make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len,
                  struct err *err)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (port < 0 || port > 65535)
        return err_set(err, ERR_INVALID, "invalid_port", "port", "port %d is not in 0..65535",
                       port);
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
        return 0;
    }
    return err_set(err, ERR_INVALID, "invalid_address", "bind",
                   "'%.64s' is not a numeric IPv4 or IPv6 address", host);
}

int net_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len, struct err *err)
{
    char host[NET_ADDRSTRLEN];
    const char *colon, *h = s, *p;
    size_t hlen;
    char *end;
    long port;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return err_set(err, ERR_INVALID, "invalid_address", NULL, "'%.64s' is not [IPV6]:PORT",
                           s);
        h = s + 1;
        hlen = (size_t)(rb - h);
        p = rb + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return err_set(err, ERR_INVALID, "invalid_address", NULL, "'%.64s' is not ADDR:PORT",
                           s);
        hlen = (size_t)(colon - s);
        p = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return err_set(err, ERR_INVALID, "invalid_address", NULL, "'%.64s' has no valid host", s);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535)
        return err_set(err, ERR_INVALID, "invalid_port", NULL,
                       "'%.64s' has no valid port (0..65535)", s);
    return net_make_addr(host, (int)port, ss, len, err);
}

int net_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int net_listen_tcp(const struct sockaddr *sa, socklen_t len, int reuseport, int backlog, int *fd,
                   struct err *err)
{
    char addr[NET_ADDRSTRLEN];
    int one = 1, s;

    *fd = -1;
    s = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return err_set(err, ERR_INTERNAL, "socket_failed", NULL, "socket: %s", strerror(errno));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        int e = errno;
        close(s);
        return err_set(err, ERR_INTERNAL, "socket_failed", NULL, "SO_REUSEPORT: %s", strerror(e));
    }
    if (sa->sa_family == AF_INET6)
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(s, sa, len) < 0) {
        int e = errno;
        close(s);
        net_addr_str(sa, addr, sizeof(addr));
        if (e == EADDRINUSE)
            return err_set(err, ERR_CONFLICT, "port_in_use", "port",
                           "cannot listen on %s: address already in use", addr);
        return err_set(err, ERR_CONFLICT, "bind_failed", "bind", "cannot listen on %s: %s", addr,
                       strerror(e));
    }
    if (listen(s, backlog) < 0) {
        int e = errno;
        close(s);
        net_addr_str(sa, addr, sizeof(addr));
        if (e == EADDRINUSE)
            return err_set(err, ERR_CONFLICT, "port_in_use", "port",
                           "cannot listen on %s: address already in use", addr);
        return err_set(err, ERR_INTERNAL, "listen_failed", NULL, "listen on %s: %s", addr,
                       strerror(e));
    }
    *fd = s;
    return 0;
}

char *net_addr_str(const struct sockaddr *sa, char *buf, size_t n)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(buf, n, "%s:%u", host, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(buf, n, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, n, "unix");
    }
    return buf;
}
