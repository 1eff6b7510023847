/*
 * tests/unit/test_sign.c - webhook signatures against the Standard Webhooks
 * specification's published test vector, and secret decoding.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sign.h"

static void
test_vector(void **state)
{
	/* From the Standard Webhooks spec's reference libraries' tests. */
	const char *body = "{\"test\": 2432232314}";
	char sig[LADDERD_SIGN_B64_SIZE];
	uint8_t *key = NULL;
	size_t keylen = 0;

	(void)state;
	assert_int_equal(ladderd_sign_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La"
					  "LaSw",
			     &key, &keylen),
	    0);
	assert_int_equal(keylen, 24);
	assert_int_equal(ladderd_sign_webhook(key, keylen,
			     "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body,
			     strlen(body), sig, sizeof(sig)),
	    0);
	assert_string_equal(sig, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	free(key);
}

static void
test_keys(void **state)
{
	uint8_t *key = NULL;
	size_t keylen = 0;

	(void)state;
	/* Padding is not key material: "YWI=" is "ab", "YQ==" is "a". */
	assert_int_equal(ladderd_sign_key("whsec_YWI=", &key, &keylen), 0);
	assert_int_equal(keylen, 2);
	assert_memory_equal(key, "ab", 2);
	free(key);
	assert_int_equal(ladderd_sign_key("whsec_YQ==", &key, &keylen), 0);
	assert_int_equal(keylen, 1);
	free(key);
	/* A secret without the prefix is used as it is. */
	assert_int_equal(ladderd_sign_key("plain secret", &key, &keylen), 0);
	assert_int_equal(keylen, 12);
	assert_memory_equal(key, "plain secret", 12);
	free(key);
	/* Not base64, not whole groups, empty: refused, nothing returned. */
	assert_int_equal(ladderd_sign_key("whsec_!!!!", &key, &keylen),
	    -EINVAL);
	assert_null(key);
	assert_int_equal(ladderd_sign_key("whsec_YWJ", &key, &keylen),
	    -EINVAL);
	assert_int_equal(ladderd_sign_key("whsec_", &key, &keylen), -EINVAL);
	assert_int_equal(ladderd_sign_key("", &key, &keylen), -EINVAL);
}

static void
test_small_buffer(void **state)
{
	char sig[LADDERD_SIGN_B64_SIZE - 1];
	const uint8_t key[] = "k";

	(void)state;
	assert_int_equal(ladderd_sign_webhook(key, 1, "id", "1", "{}", 2, sig,
			     sizeof(sig)),
	    -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_small_buffer),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
