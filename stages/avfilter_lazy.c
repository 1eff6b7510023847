/*
 * stages/avfilter_lazy.c - load libavfilter on first use (avfilter_lazy.h).
 *
 * Owns the process's one handle on libavfilter and the table of its
 * functions. They are file-scope state, against the stages' habit, because
 * a loaded library is process-wide anyway (the dynamic linker keeps one
 * copy per process whatever we do): the table only mirrors that. Written
 * once under pthread_once, read-only after, so the shared decoder's
 * threads may ask too. The handle is never closed (see the header).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "avfilter_lazy.h"

static pthread_once_t lazy_once = PTHREAD_ONCE_INIT;
static void *lazy_handle;	      /* kept until exit once loaded */
static struct ladderd_avfilter lazy_api;
static const struct ladderd_avfilter *lazy_ok; /* &lazy_api once loaded */
static char lazy_err[512];

/* Look up `name` into `field`; 0 or -1 with lazy_err filled. */
#define LAZY_SYM(field)                                                 \
	((lazy_api.field = (__typeof__(lazy_api.field))dlsym(lazy_handle, \
	      #field)) == NULL ? avfilter_lazy_fail() : 0)

static int
avfilter_lazy_fail(void)
{
	const char *why = dlerror();

	(void)snprintf(lazy_err, sizeof(lazy_err), "filters need %s: %s",
	    AVFILTER_LAZY_SONAME, why != NULL ? why : "unknown dlerror");
	return -1;
}

static void
avfilter_lazy_load(void)
{
	unsigned v;

	/* RTLD_LOCAL: its symbols serve our lookups only. The libav
	 * libraries it needs are the ones this stage linked already. */
	if ((lazy_handle = dlopen(AVFILTER_LAZY_SONAME,
		 RTLD_NOW | RTLD_LOCAL)) == NULL) {
		(void)avfilter_lazy_fail();
		return;
	}
	if (LAZY_SYM(avfilter_version) < 0 ||
	    LAZY_SYM(avfilter_graph_alloc) < 0 ||
	    LAZY_SYM(avfilter_get_by_name) < 0 ||
	    LAZY_SYM(avfilter_graph_create_filter) < 0 ||
	    LAZY_SYM(avfilter_graph_parse_ptr) < 0 ||
	    LAZY_SYM(avfilter_graph_config) < 0 ||
	    LAZY_SYM(avfilter_graph_free) < 0 ||
	    LAZY_SYM(avfilter_inout_alloc) < 0 ||
	    LAZY_SYM(avfilter_inout_free) < 0 ||
	    LAZY_SYM(av_buffersrc_add_frame_flags) < 0 ||
	    LAZY_SYM(av_buffersink_get_frame) < 0 ||
	    LAZY_SYM(av_buffersink_get_time_base) < 0)
		goto fail;
	/* The soname says the major, but a library installed by hand
	 * under that name could be anything: its ABI must be the headers'. */
	v = lazy_api.avfilter_version();
	if (AV_VERSION_MAJOR(v) != LIBAVFILTER_VERSION_MAJOR) {
		(void)snprintf(lazy_err, sizeof(lazy_err),
		    "filters need %s: it says it is version %u.%u.%u, "
		    "ladderd was built for %d.x",
		    AVFILTER_LAZY_SONAME, AV_VERSION_MAJOR(v),
		    AV_VERSION_MINOR(v), AV_VERSION_MICRO(v),
		    LIBAVFILTER_VERSION_MAJOR);
		goto fail;
	}
	lazy_ok = &lazy_api;
	return;
fail:
	(void)dlclose(lazy_handle);
	lazy_handle = NULL;
}

const struct ladderd_avfilter *
ladderd_avfilter_lazy_get(char *err, size_t errsz)
{
	if (pthread_once(&lazy_once, avfilter_lazy_load) != 0) {
		(void)snprintf(err, errsz, "filters need %s: pthread_once "
		    "failed", AVFILTER_LAZY_SONAME);
		return NULL;
	}
	if (lazy_ok == NULL)
		(void)snprintf(err, errsz, "%s", lazy_err);
	return lazy_ok;
}
