/*
 * tokens.h - a jobserver (as in GNU make): a pipe holding one byte per
 * rung that may run at once across the machine. A process takes a byte
 * before starting a rung and writes it back when the rung is reaped, so
 * several jobs share one limit. The read end is non-blocking and pollable.
 */
#ifndef LADDERD_TOKENS_H
#define LADDERD_TOKENS_H

struct ladderd_tokens {
	int rfd, wfd;
};

int ladderd_tokens_init(struct ladderd_tokens *t, int n);
int ladderd_tokens_from_env(struct ladderd_tokens *t);
int ladderd_tokens_export(const struct ladderd_tokens *t);
int ladderd_tokens_take(struct ladderd_tokens *t);
void ladderd_tokens_give(struct ladderd_tokens *t);
void ladderd_tokens_release(struct ladderd_tokens *t);

#endif
