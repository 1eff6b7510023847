/*
 * netpolicy.c - the address policy for URLs from drops (see netpolicy.h).
 *
 * Every address is compared in one 16-byte form, IPv4 as ::ffff:a.b.c.d,
 * so one table and one prefix match serve both families. IPv6 forms that
 * carry an IPv4 address a router or the kernel would end up sending to
 * (NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that IPv4 address
 * too, so "64:ff9b::a9fe:a9fe" is as refused as 169.254.169.254.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netpolicy.h"

struct netpolicy_range {
	const char *cidr;
	const char *why;
};

/*
 * Refused unless allowed. IPv4 from RFC 6890's special-purpose registry
 * (everything not globally reachable, plus multicast and broadcast);
 * IPv6 likewise. ::/96 (v4-compatible, deprecated) covers :: and ::1.
 */
static const struct netpolicy_range netpolicy_refused[] = {
	{ "0.0.0.0/8", "unspecified" },
	{ "10.0.0.0/8", "private" },
	{ "100.64.0.0/10", "shared (CGNAT)" },
	{ "127.0.0.0/8", "loopback" },
	{ "169.254.0.0/16", "link-local" },
	{ "172.16.0.0/12", "private" },
	{ "192.0.0.0/24", "reserved" },
	{ "192.0.2.0/24", "documentation" },
	{ "192.88.99.0/24", "6to4 relay" },
	{ "192.168.0.0/16", "private" },
	{ "198.18.0.0/15", "benchmarking" },
	{ "198.51.100.0/24", "documentation" },
	{ "203.0.113.0/24", "documentation" },
	{ "224.0.0.0/4", "multicast" },
	{ "240.0.0.0/4", "reserved or broadcast" },
	{ "::/96", "unspecified, loopback or v4-compatible" },
	{ "100::/64", "discard" },
	{ "64:ff9b:1::/48", "local NAT64" },
	{ "2001::/32", "Teredo" },
	{ "2001:db8::/32", "documentation" },
	{ "fc00::/7", "unique-local" },
	{ "fe80::/10", "link-local" },
	{ "fec0::/10", "site-local" },
	{ "ff00::/8", "multicast" },
};

#define NETPOLICY_NREFUSED \
	(sizeof(netpolicy_refused) / sizeof(netpolicy_refused[0]))

/* a.b.c.d as ::ffff:a.b.c.d */
static void
netpolicy_map4(const uint8_t v4[4], uint8_t out[16])
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

static bool
netpolicy_match(const uint8_t a[16], const struct ladderd_netpolicy_net *n)
{
	unsigned full = n->prefix / 8, rest = n->prefix % 8;

	if (memcmp(a, n->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ n->addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* Parse a CIDR (or a bare address) into `out`; 0 or -EINVAL. */
static int
netpolicy_parse(const char *cidr, struct ladderd_netpolicy_net *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(cidr, '/');
	size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
	uint8_t v4[4];
	unsigned max, len;
	bool is4;

	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, cidr, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, v4) == 1) {
		netpolicy_map4(v4, out->addr);
		is4 = true;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		is4 = false;
		max = 128;
	} else {
		return -EINVAL;
	}
	len = max;
	if (slash != NULL) {
		char *end;
		unsigned long v;

		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		v = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || v > max)
			return -EINVAL;
		len = (unsigned)v;
	}
	out->prefix = is4 ? len + 96 : len;
	/* Host bits set ("10.1.2.3/8") is most likely a typo: refuse it. */
	for (unsigned bit = out->prefix; bit < 128; bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
			return -EINVAL;
	return 0;
}

int
ladderd_netpolicy_allow(struct ladderd_netpolicy *p, const char *cidr)
{
	struct ladderd_netpolicy_net n;

	if (netpolicy_parse(cidr, &n) < 0)
		return -EINVAL;
	if (p->n == LADDERD_NETPOLICY_MAX)
		return -ENOSPC;
	p->nets[p->n++] = n;
	return 0;
}

/* The IPv4 address an IPv6 one stands for, if any (mapped, NAT64, 6to4). */
static bool
netpolicy_embedded4(const uint8_t a[16], uint8_t out[16])
{
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };

	if (memcmp(a, nat64, 12) == 0) {
		netpolicy_map4(a + 12, out);
		return true;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		netpolicy_map4(a + 2, out);
		return true;
	}
	return false;
}

/* The name of the refused range `a` is in, NULL when none. */
static const char *
netpolicy_refused_why(const uint8_t a[16])
{
	for (size_t i = 0; i < NETPOLICY_NREFUSED; i++) {
		struct ladderd_netpolicy_net n;

		/* The table is constant and valid: parsed on use, no init. */
		if (netpolicy_parse(netpolicy_refused[i].cidr, &n) == 0 &&
		    netpolicy_match(a, &n))
			return netpolicy_refused[i].why;
	}
	return NULL;
}

static bool
netpolicy_allowed(const struct ladderd_netpolicy *p, const uint8_t a[16])
{
	for (size_t i = 0; i < p->n; i++)
		if (netpolicy_match(a, &p->nets[i]))
			return true;
	return false;
}

bool
ladderd_netpolicy_check(const struct ladderd_netpolicy *p,
    const struct sockaddr *sa, socklen_t len, const char **ret_why)
{
	uint8_t a[16], e[16];
	const char *why = NULL;
	bool has4 = false;

	if (ret_why != NULL)
		*ret_why = NULL;
	if (p->trusted)
		return true;
	if (sa->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const void *)sa;

		netpolicy_map4((const uint8_t *)&s4->sin_addr, a);
	} else if (sa->sa_family == AF_INET6 &&
	    len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		memcpy(a, &s6->sin6_addr, 16);
		has4 = netpolicy_embedded4(a, e);
	} else {
		if (ret_why != NULL)
			*ret_why = "not an IP address";
		return false;
	}
	if (netpolicy_allowed(p, a) || (has4 && netpolicy_allowed(p, e)))
		return true;
	if ((why = netpolicy_refused_why(a)) == NULL && has4)
		why = netpolicy_refused_why(e);
	if (ret_why != NULL)
		*ret_why = why;
	return why == NULL;
}

/* strcasecmp of a and b, ignoring one trailing dot on either. */
static bool
netpolicy_same_name(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	return alen == blen && alen > 0 && strncasecmp(a, b, alen) == 0;
}

bool
ladderd_netpolicy_host_match(const char *pattern, const char *host)
{
	size_t plen = strlen(pattern), hlen = strlen(host);

	if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* ".example.com" must be a proper suffix at a label edge. */
		size_t slen = plen - 1;

		if (hlen > 0 && host[hlen - 1] == '.')
			hlen--;
		if (pattern[plen - 1] == '.')
			slen--;
		return hlen > slen &&
		    strncasecmp(host + hlen - slen, pattern + 1, slen) == 0;
	}
	return netpolicy_same_name(pattern, plen, host, hlen);
}

int
ladderd_netpolicy_url_host(const char *url, char *host, size_t size)
{
	const char *p, *end, *at;
	size_t n;

	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return -EINVAL;
	end = p + strcspn(p, "/?#");
	/* userinfo: the last '@' before the path */
	for (at = end; at > p && at[-1] != '@'; at--)
		;
	if (at > p)
		p = at;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL)
			return -EINVAL;
		p++;
		end = close;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (colon != NULL)
			end = colon;
	}
	n = (size_t)(end - p);
	if (n == 0 || n >= size)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		host[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' :
							       p[i]);
	host[n] = '\0';
	return 0;
}
