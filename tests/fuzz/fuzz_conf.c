/*
 * fuzz_conf.c - libFuzzer harness for the config parser
 * (ladderd_conf_load_string: libconfig syntax, the key tables, profiles,
 * workflows, watches). The input is the config file's text. Relative
 * folders resolve against /nonexistent so nothing outside is touched;
 * an @include in the input is refused by the harness (it names files).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ladderd_conf *c = NULL;
	char err[2048], *text;
	FILE *devnull;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (strstr(text, "@include") != NULL) {
		free(text);
		return 0;
	}
	if (ladderd_conf_load_string(text, "/nonexistent", &c, err,
		sizeof(err)) == 0) {
		/* check-config prints every loaded config: that too. */
		if ((devnull = fopen("/dev/null", "w")) != NULL) {
			ladderd_conf_print(c, devnull);
			fclose(devnull);
		}
		ladderd_conf_free(c);
	} else if (err[0] == '\0') {
		abort(); /* a refusal always says why */
	}
	free(text);
	return 0;
}
