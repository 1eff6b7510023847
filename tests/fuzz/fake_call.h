/*
 * fake_call.h - the host side of struct ladderd_call for fuzz harnesses
 * that compile a stage's .c file in (to reach its static parser): fail()
 * formats the message like the host would (so format bugs show),
 * write_atomic reads what it is given and writes nothing, the rest is
 * unset. Included after the stage source.
 */
#ifndef LADDERD_FUZZ_FAKE_CALL_H
#define LADDERD_FUZZ_FAKE_CALL_H

#include <errno.h>
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

/* Writes nothing: the harness checks what would be written, not files. */
static int
fake_call_write_atomic(struct ladderd_call *call, const char *path,
    const void *data, size_t len)
{
	const volatile unsigned char *p = data;
	unsigned sum = 0;

	(void)call;
	(void)path;
	/* Read every byte, so ASan sees a length past the buffer. */
	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return sum == ~0u ? -EINVAL : 0;
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
	call->write_atomic = fake_call_write_atomic;
	fake_call_error[0] = '\0';
}

#endif
