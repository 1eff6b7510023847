/*
 * fake_call.h - the host side of struct ladderd_call for fuzz harnesses
 * that compile a stage's .c file in (to reach its static parser): fail()
 * formats the message like the host would (so format bugs show), the rest
 * does nothing. Included after the stage source.
 */
#ifndef LADDERD_FUZZ_FAKE_CALL_H
#define LADDERD_FUZZ_FAKE_CALL_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char fake_call_error[2048];

static void
fake_call_fail(struct ladderd_call *call, const char *fmt, ...)
{
	va_list ap;

	(void)call;
	va_start(ap, fmt);
	(void)vsnprintf(fake_call_error, sizeof(fake_call_error), fmt, ap);
	va_end(ap);
}

static void
fake_call_log(struct ladderd_call *call, int level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	(void)call;
	(void)level;
	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

static void
fake_call_init(struct ladderd_call *call, cJSON *ctx)
{
	memset(call, 0, sizeof(*call));
	call->abi = LADDERD_STAGE_ABI_VERSION;
	call->size = sizeof(*call);
	call->ctx = ctx;
	call->stage = "fuzz";
	call->fail = fake_call_fail;
	call->log = fake_call_log;
	fake_call_error[0] = '\0';
}

#endif
