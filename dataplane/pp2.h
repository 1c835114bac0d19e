/* pp2.h - PROXY protocol version 2 headers (haproxy's proxy-protocol.txt,
 * section 2.2): what a target that asked for it reads before the first
 * byte of a proxied connection. */
#ifndef PC_PP2_H
#define PC_PP2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header this module writes: 16 fixed bytes + two IPv6
 * addresses and two ports. */
#define PP2_MAX_LEN (16u + 36u)

/* Write the header of a proxied TCP connection from 'src' (the client) to
 * 'dst' (the address the client connected to) into 'buf'. IPv4-mapped IPv6
 * pairs are sent as TCP4; a pair of mixed or unknown families as
 * PROXY/UNSPEC with no addresses (the receiver then uses the real
 * endpoints, as the specification asks). Returns the length, or 0 when
 * 'cap' is too small. */
size_t pp2_build(uint8_t *buf, size_t cap, const struct sockaddr *src, const struct sockaddr *dst);

/* Write a LOCAL header (a connection of the proxy's own, such as a health
 * check: the receiver must use the real endpoints). Returns 16, or 0 when
 * 'cap' is too small. */
size_t pp2_build_local(uint8_t *buf, size_t cap);

#endif
