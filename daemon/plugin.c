/*
 * plugin.c - loads stage plugins (NAME.so) from a colon-separated stage
 * path with dlopen(RTLD_NOW | RTLD_LOCAL) and refuses, with a message that
 * names the file, a plugin that lacks the descriptor symbol, was built for
 * another ABI, has a descriptor too small for this host, has no run(), or
 * whose name differs from its file name. Loaded plugins are kept in a
 * registry, looked up by name, and unloaded only at exit.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin.h"

#define PLUGINS_MAX 64

struct ladderd_plugins {
	char *stage_path;
	size_t n;
	struct ladderd_plugin items[PLUGINS_MAX];
};

struct ladderd_plugins *
ladderd_plugins_new(const char *stage_path)
{
	struct ladderd_plugins *reg = calloc(1, sizeof(*reg));

	if (reg == NULL)
		return NULL;
	if ((reg->stage_path = strdup(stage_path ? stage_path : "")) == NULL) {
		free(reg);
		return NULL;
	}
	return reg;
}

static void
plugin_release(struct ladderd_plugin *p)
{
	if (p == NULL)
		return;
	/*
	 * Under ASan, keep the code mapped so leak reports of a stage can
	 * still be symbolised; unloading buys nothing at exit anyway.
	 */
	if (p->handle && getenv("LADDERD_NO_DLCLOSE") == NULL)
		dlclose(p->handle);
	free(p->name);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

void
ladderd_plugins_free(struct ladderd_plugins *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->n; i++)
		plugin_release(&reg->items[i]);
	free(reg->stage_path);
	free(reg);
}

/*
 * Open one plugin file and check its descriptor. `want_name` (may be NULL)
 * is the stage name the caller expects. Returns 0 or a negative errno with
 * a human-readable reason in err.
 */
static int
plugin_open(const char *path, const char *want_name,
    struct ladderd_plugin *ret, char *err, size_t errlen)
{
	void *h;
	const struct ladderd_stage *d;

	memset(ret, 0, sizeof(*ret));
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen,
		    "cannot load stage '%s': %s (check its dependencies with "
		    "ldd)", path, dlerror());
		return -ENOEXEC;
	}
	d = dlsym(h, "ladderd_stage_entry");
	if (d == NULL) {
		snprintf(err, errlen,
		    "'%s' is not a ladderd stage: no symbol "
		    "ladderd_stage_entry", path);
		goto refuse;
	}
	if (d->abi != LADDERD_STAGE_ABI_VERSION) {
		snprintf(err, errlen,
		    "stage '%s' (%s) built for ABI %u, daemon speaks %d",
		    d->size >= offsetof(struct ladderd_stage, name) +
			sizeof(char *) && d->name ? d->name : "?", path,
		    (unsigned)d->abi, LADDERD_STAGE_ABI_VERSION);
		goto refuse;
	}
	if (d->size < offsetof(struct ladderd_stage, fini) + sizeof(d->fini)) {
		snprintf(err, errlen, "stage '%s': descriptor too small (%u "
		    "bytes)", path, (unsigned)d->size);
		goto refuse;
	}
	if (d->name == NULL || d->run == NULL) {
		snprintf(err, errlen, "stage '%s': descriptor has no name or "
		    "no run()", path);
		goto refuse;
	}
	if (want_name && strcmp(d->name, want_name) != 0) {
		snprintf(err, errlen, "stage file '%s' declares name '%s', "
		    "expected '%s'", path, d->name, want_name);
		goto refuse;
	}
	ret->handle = h;
	ret->desc = d;
	ret->name = strdup(d->name);
	ret->path = strdup(path);
	if (ret->name == NULL || ret->path == NULL) {
		plugin_release(ret);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
refuse:
	dlclose(h);
	return -EINVAL;
}

/*
 * Find stage `name`, loading NAME.so from the first directory of the stage
 * path that has it. The returned plugin belongs to the registry.
 */
int
ladderd_plugins_get(struct ladderd_plugins *reg, const char *name,
    const struct ladderd_plugin **ret, char *err, size_t errlen)
{
	char dirs[PATH_MAX * 4];
	char *save = NULL, *dir;
	int rc;

	for (size_t i = 0; i < reg->n; i++) {
		if (strcmp(reg->items[i].name, name) == 0) {
			*ret = &reg->items[i];
			return 0;
		}
	}
	if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0') {
		snprintf(err, errlen, "invalid stage name '%s'", name);
		return -EINVAL;
	}
	if (reg->n == PLUGINS_MAX) {
		snprintf(err, errlen, "too many stages (at most %d)",
		    PLUGINS_MAX);
		return -ENOSPC;
	}
	if (snprintf(dirs, sizeof(dirs), "%s", reg->stage_path) >=
	    (int)sizeof(dirs)) {
		snprintf(err, errlen, "stage path too long");
		return -ENAMETOOLONG;
	}
	for (dir = strtok_r(dirs, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		char path[PATH_MAX];

		if (snprintf(path, sizeof(path), "%s/%s.so", dir, name) >=
		    (int)sizeof(path))
			continue;
		if (access(path, F_OK) != 0)
			continue;
		rc = plugin_open(path, name, &reg->items[reg->n], err,
		    errlen);
		if (rc < 0)
			return rc;
		*ret = &reg->items[reg->n++];
		return 0;
	}
	snprintf(err, errlen, "stage '%s' not found in stage path '%s'", name,
	    reg->stage_path);
	return -ENOENT;
}
