/*
 * plugin.h - the stage loader: dlopen, the ABI gate, a registry of loaded
 * stages. Plugins stay loaded until ladderd_plugins_free() at exit.
 */
#ifndef LADDERD_PLUGIN_H
#define LADDERD_PLUGIN_H

#include <stddef.h>

#include "../stages/stage.h"

struct ladderd_plugin {
	char *name;
	char *path; /* the .so it came from */
	void *handle;
	const struct ladderd_stage *desc;
};

struct ladderd_plugins;

struct ladderd_plugins *ladderd_plugins_new(const char *stage_path);
void ladderd_plugins_free(struct ladderd_plugins *reg);
int ladderd_plugins_get(struct ladderd_plugins *reg, const char *name,
    const struct ladderd_plugin **ret, char *err, size_t errlen);

#endif
