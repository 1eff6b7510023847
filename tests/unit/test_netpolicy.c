/*
 * tests/unit/test_netpolicy.c - the address policy for URLs from drops:
 * every refused range (IPv4, IPv6, embedded IPv4 forms) is refused, public
 * addresses pass, an allow list opens exactly its ranges, bad CIDRs are
 * refused; host allow-list matching and the URL host parse.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netpolicy.h"

/* Whether `text` (an IPv4 or IPv6 address) passes policy `p`. */
static bool
allowed(const struct ladderd_netpolicy *p, const char *text)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET, text, &s4.sin_addr) == 1)
		return ladderd_netpolicy_check(p, (struct sockaddr *)&s4,
		    sizeof(s4), NULL);
	assert_int_equal(inet_pton(AF_INET6, text, &s6.sin6_addr), 1);
	return ladderd_netpolicy_check(p, (struct sockaddr *)&s6, sizeof(s6),
	    NULL);
}

static void
test_refused_by_default(void **state)
{
	static const char *const refused[] = { "127.0.0.1", "127.255.1.2",
		"0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "100.64.0.1", "100.127.255.254",
		"169.254.169.254", "224.0.0.1", "239.255.255.250",
		"255.255.255.255", "240.0.0.1", "198.18.0.1", "::", "::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
		"::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
		"64:ff9b:1::1", "2002:7f00:1::1", "2002:a00:1::", "2001::1",
		"fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "fec0::1",
		"ff02::1", "ff05::2", "2001:db8::1", NULL };
	struct ladderd_netpolicy p = { 0 };

	(void)state;
	for (int i = 0; refused[i] != NULL; i++) {
		if (allowed(&p, refused[i]))
			fail_msg("%s was allowed", refused[i]);
	}
}

static void
test_public_allowed(void **state)
{
	static const char *const ok[] = { "1.1.1.1", "8.8.8.8", "93.184.216.34",
		"172.32.0.1", "172.15.255.255", "100.128.0.1", "192.169.0.1",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
		"2606:4700:4700::1111", "2a00:1450:4001::1", NULL };
	struct ladderd_netpolicy p = { 0 };

	(void)state;
	for (int i = 0; ok[i] != NULL; i++) {
		if (!allowed(&p, ok[i]))
			fail_msg("%s was refused", ok[i]);
	}
}

static void
test_allow_list(void **state)
{
	struct ladderd_netpolicy p = { 0 };
	const char *why = NULL;
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	(void)state;
	assert_int_equal(ladderd_netpolicy_allow(&p, "127.0.0.0/8"), 0);
	assert_int_equal(ladderd_netpolicy_allow(&p, "10.1.0.0/16"), 0);
	assert_int_equal(ladderd_netpolicy_allow(&p, "fd00::/8"), 0);
	assert_int_equal(ladderd_netpolicy_allow(&p, "192.168.7.7"), 0);
	assert_true(allowed(&p, "127.0.0.1"));
	assert_true(allowed(&p, "::ffff:127.0.0.1"));
	assert_true(allowed(&p, "64:ff9b::7f00:1"));
	assert_true(allowed(&p, "10.1.255.1"));
	assert_false(allowed(&p, "10.2.0.1"));
	assert_true(allowed(&p, "fd12::1"));
	assert_false(allowed(&p, "fc00::1"));
	assert_true(allowed(&p, "192.168.7.7"));
	assert_false(allowed(&p, "192.168.7.8"));
	assert_false(allowed(&p, "::1"));
	/* the reason names the range, for debug logs */
	assert_int_equal(inet_pton(AF_INET, "169.254.169.254", &s4.sin_addr),
	    1);
	assert_false(ladderd_netpolicy_check(&p, (struct sockaddr *)&s4,
	    sizeof(s4), &why));
	assert_string_equal(why, "link-local");
	/* trusted: everything */
	p.trusted = true;
	assert_true(allowed(&p, "169.254.169.254"));
}

static void
test_bad_cidrs(void **state)
{
	static const char *const bad[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33",
		"10.1.2.3/8", "fd00::1/8", "::/129", "localhost", "10.0.0.0/8x",
		"10.0.0.0/-1", "1.2.3", NULL };
	struct ladderd_netpolicy p = { 0 };

	(void)state;
	for (int i = 0; bad[i] != NULL; i++)
		if (ladderd_netpolicy_allow(&p, bad[i]) != -EINVAL)
			fail_msg("'%s' was taken", bad[i]);
	assert_int_equal(p.n, 0);
	for (int i = 0; i < LADDERD_NETPOLICY_MAX; i++)
		assert_int_equal(ladderd_netpolicy_allow(&p, "0.0.0.0/0"), 0);
	assert_int_equal(ladderd_netpolicy_allow(&p, "::/0"), -ENOSPC);
}

static void
test_hosts(void **state)
{
	char h[64];

	(void)state;
	assert_true(ladderd_netpolicy_host_match("hooks.example", "hooks.example"));
	assert_true(ladderd_netpolicy_host_match("Hooks.Example.", "hooks.example"));
	assert_false(ladderd_netpolicy_host_match("hooks.example", "evilhooks.example"));
	assert_false(ladderd_netpolicy_host_match("hooks.example", "hooks.example.evil"));
	assert_true(ladderd_netpolicy_host_match("*.example", "a.b.example"));
	assert_false(ladderd_netpolicy_host_match("*.example", "example"));
	assert_false(ladderd_netpolicy_host_match("*.example", "badexample"));
	assert_false(ladderd_netpolicy_host_match("", ""));
	assert_int_equal(ladderd_netpolicy_url_host(
	    "https://user:pw@Hooks.Example:8443/x?y#z", h, sizeof(h)), 0);
	assert_string_equal(h, "hooks.example");
	assert_int_equal(ladderd_netpolicy_url_host("http://[::1]:80/", h,
	    sizeof(h)), 0);
	assert_string_equal(h, "::1");
	/* the last '@' before the path wins, as in libcurl */
	assert_int_equal(ladderd_netpolicy_url_host(
	    "http://ok.example@evil.example/", h, sizeof(h)), 0);
	assert_string_equal(h, "evil.example");
	assert_int_equal(ladderd_netpolicy_url_host("ftp://x/", h, sizeof(h)),
	    -EINVAL);
	assert_int_equal(ladderd_netpolicy_url_host("http:///x", h, sizeof(h)),
	    -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_by_default),
		cmocka_unit_test(test_public_allowed),
		cmocka_unit_test(test_allow_list),
		cmocka_unit_test(test_bad_cidrs),
		cmocka_unit_test(test_hosts),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
