/* pp2.c - PROXY protocol v2 header encoding. */
#include <string.h>

#include <netinet/in.h>

#include "pp2.h"

static const uint8_t pp2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

enum {
    PP2_CMD_LOCAL = 0x20, /* version 2 in the high nibble */
    PP2_CMD_PROXY = 0x21,
    PP2_FAM_UNSPEC = 0x00,
    PP2_FAM_TCP4 = 0x11,
    PP2_FAM_TCP6 = 0x21,
};

static size_t pp2_head(uint8_t *buf, uint8_t cmd, uint8_t fam, uint16_t len)
{
    memcpy(buf, pp2_sig, sizeof(pp2_sig));
    buf[12] = cmd;
    buf[13] = fam;
    buf[14] = (uint8_t)(len >> 8);
    buf[15] = (uint8_t)len;
    return 16;
}

/* The IPv4 address and port of 'sa' (plain or IPv4-mapped), in network
 * order; 0 when it has none. */
static int pp2_v4(const struct sockaddr *sa, uint8_t addr[4], uint8_t port[2])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(addr, &in->sin_addr, 4);
        memcpy(port, &in->sin_port, 2);
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(addr, in6->sin6_addr.s6_addr + 12, 4);
            memcpy(port, &in6->sin6_port, 2);
            return 1;
        }
    }
    return 0;
}

size_t pp2_build(uint8_t *buf, size_t cap, const struct sockaddr *src, const struct sockaddr *dst)
{
    uint8_t sa4[4], da4[4], sp[2], dport[2];
    size_t n;

    if (cap < PP2_MAX_LEN)
        return 0;
    if (pp2_v4(src, sa4, sp) && pp2_v4(dst, da4, dport)) {
        n = pp2_head(buf, PP2_CMD_PROXY, PP2_FAM_TCP4, 12);
        memcpy(buf + n, sa4, 4);
        memcpy(buf + n + 4, da4, 4);
        memcpy(buf + n + 8, sp, 2);
        memcpy(buf + n + 10, dport, 2);
        return n + 12;
    }
    if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;

        n = pp2_head(buf, PP2_CMD_PROXY, PP2_FAM_TCP6, 36);
        memcpy(buf + n, &s6->sin6_addr, 16);
        memcpy(buf + n + 16, &d6->sin6_addr, 16);
        memcpy(buf + n + 32, &s6->sin6_port, 2);
        memcpy(buf + n + 34, &d6->sin6_port, 2);
        return n + 36;
    }
    return pp2_head(buf, PP2_CMD_PROXY, PP2_FAM_UNSPEC, 0);
}

size_t pp2_build_local(uint8_t *buf, size_t cap)
{
    if (cap < 16)
        return 0;
    return pp2_head(buf, PP2_CMD_LOCAL, PP2_FAM_UNSPEC, 0);
}
