/*
 * fuzz_manifest.c - libFuzzer harness for the job manifest parser
 * (ladderd_ingest_parse_manifest: cJSON parse and the checks README
 * "Drops" describes), on the built-in default config. The input is the manifest
 * file's bytes; a NUL ends the text as it does for a dropped file.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ctx.h"
#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ladderd_conf *conf;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024], *text;
	cJSON *m = NULL;

	if (conf == NULL &&
	    ladderd_conf_load_string("", NULL, &conf, err, sizeof(err)) < 0)
		abort();
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (ladderd_ingest_parse_manifest(conf, text, &m, err, sizeof(err)) ==
	    0) {
		/* What the claim reads next must be there. */
		if (ladderd_ctx_str(m, "source", NULL) == NULL)
			abort();
	}
	/* The refusal names the task after a usable task_id. */
	(void)ladderd_ctx_valid_name(ladderd_ctx_str(m, "task_id", ""));
	cJSON_Delete(m);
	free(text);
	return 0;
}
