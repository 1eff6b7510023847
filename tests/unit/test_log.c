/* tests/unit/test_log.c - control bytes are escaped in every log line. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void
test_escape(void **state)
{
	char out[64];

	(void)state;
	log_escape("plain 'name.mp4' é", out, sizeof(out));
	assert_string_equal(out, "plain 'name.mp4' é");
	log_escape("a\nb\rc\td", out, sizeof(out));
	assert_string_equal(out, "a\\nb\\rc\\td");
	log_escape("\033[2J\x7f\x01", out, sizeof(out));
	assert_string_equal(out, "\\x1b[2J\\x7f\\x01");
	/* U+009B (CSI) as UTF-8 */
	log_escape("x\xc2\x9by", out, sizeof(out));
	assert_string_equal(out, "x\\u009by");
}

static void
test_truncation(void **state)
{
	char out[6];

	(void)state;
	/* An escape is never cut in half. */
	log_escape("abcd\nef", out, sizeof(out));
	assert_string_equal(out, "abcd");
	log_escape("abcdefgh", out, sizeof(out));
	assert_string_equal(out, "abcde");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_truncation),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
