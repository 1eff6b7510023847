/*
 * netpolicy.h - which addresses a URL from a drop may reach (README
 * "Network safety"). Used by the download stage (a plugin) and the notify
 * worker (ladderd-notify), and conf.c validates allow lists with it: netpolicy.c
 * is compiled into each, so the rule exists once and the stage still links
 * against no daemon symbol.
 *
 * By default an address is refused when it is loopback, private (RFC 1918,
 * 100.64.0.0/10 shared), link-local, unique-local, site-local, multicast,
 * unspecified, broadcast, reserved or documentation space, or an IPv6 form
 * that embeds such an IPv4 address (v4-mapped, v4-compatible, NAT64
 * 64:ff9b::/96, 6to4); Teredo and local-use NAT64 are refused whole. A
 * policy's allow list (CIDRs) opens ranges again.
 *
 * The check belongs on the address actually connected to, after DNS and on
 * every redirect: netpolicy_curl.h applies it to a libcurl handle (kept
 * apart so the supervisor, which has conf.c validate allow lists, does not
 * link libcurl). No logging, no allocation, no global state.
 */
#ifndef LADDERD_NETPOLICY_H
#define LADDERD_NETPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LADDERD_NETPOLICY_MAX 64 /* CIDRs in one allow list */

struct ladderd_netpolicy_net {
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	unsigned prefix;  /* 0..128, over the 16-byte form */
};

struct ladderd_netpolicy {
	bool trusted; /* the URL came from the operator: anything goes */
	size_t n;
	struct ladderd_netpolicy_net nets[LADDERD_NETPOLICY_MAX];
	unsigned refused; /* connections refused so far (opensocket) */
};

/*
 * Add "a.b.c.d/len", "x:y::/len" or a bare address (a host route) to the
 * allow list. Returns 0, -EINVAL (not a CIDR, host bits set) or -ENOSPC.
 */
int ladderd_netpolicy_allow(struct ladderd_netpolicy *p, const char *cidr);

/*
 * Whether `sa` (AF_INET or AF_INET6; anything else is refused) may be
 * connected to under `p`. *ret_why (if not NULL) receives a short name of
 * the refused range ("loopback", ...), for debug logs only: messages a
 * drop's author can read must not tell refused from unreachable.
 */
bool ladderd_netpolicy_check(const struct ladderd_netpolicy *p,
    const struct sockaddr *sa, socklen_t len, const char **ret_why);

/*
 * Whether host name `host` matches `pattern` from a host allow list: the
 * same name (case-insensitive, a trailing dot ignored), or "*.example.com"
 * for any name below example.com (not example.com itself).
 */
bool ladderd_netpolicy_host_match(const char *pattern, const char *host);

/*
 * The host of an http(s) URL ("https://user@Host.example:8443/x" gives
 * "host.example", "http://[::1]/" gives "::1"), lowercase. 0, or -EINVAL
 * when it is no http(s) URL with a host. For early, friendly refusals
 * only: the enforcing check uses libcurl's own parse.
 */
int ladderd_netpolicy_url_host(const char *url, char *host, size_t size);

#endif
