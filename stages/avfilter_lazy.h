/*
 * stages/avfilter_lazy.h - libavfilter, loaded on first use by graph.c.
 *
 * libavfilter and the ~30 libraries it brings (flite voices, rubberband,
 * libplacebo, ...) cost every process that links it ~15 ms of CPU and
 * ~11 MB of RSS at start, yet only a task with filters (deinterlace, tone
 * map, rotation, loudness, the probe's idet and ebur128) builds a graph.
 * So the media stages compile against libavfilter's headers but do not
 * link it: the first graph dlopens the soname of those headers
 * (AVFILTER_LAZY_SONAME) and looks up the functions graph.c calls, and a
 * process that builds no graph never maps it.
 *
 * Loading happens once per process (thread-safe); the library then stays
 * mapped until exit, like a linked one (graphs are freed after the last
 * one is made, and a stage .so is never unloaded either). A library that
 * is missing, lacks a function or reports another major version is an
 * error for the task, with a message that says so, never a crash.
 */
#ifndef LADDERD_AVFILTER_LAZY_H
#define LADDERD_AVFILTER_LAZY_H

#include <stddef.h>

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/macros.h>

/* The soname of the headers we were compiled against ("libavfilter.so.8"). */
#define AVFILTER_LAZY_SONAME \
	"libavfilter.so." AV_STRINGIFY(LIBAVFILTER_VERSION_MAJOR)

/*
 * Every libavfilter function the stages call, typed from its header so a
 * call is checked as if it were linked. Add a function here (and in
 * avfilter_lazy.c's list) before calling it: a direct call would leave an
 * undefined symbol that fails the stage's dlopen (t0357 checks).
 */
struct ladderd_avfilter {
	__typeof__(avfilter_version) *avfilter_version;
	__typeof__(avfilter_graph_alloc) *avfilter_graph_alloc;
	__typeof__(avfilter_get_by_name) *avfilter_get_by_name;
	__typeof__(avfilter_graph_create_filter) *avfilter_graph_create_filter;
	__typeof__(avfilter_graph_parse_ptr) *avfilter_graph_parse_ptr;
	__typeof__(avfilter_graph_config) *avfilter_graph_config;
	__typeof__(avfilter_graph_free) *avfilter_graph_free;
	__typeof__(avfilter_inout_alloc) *avfilter_inout_alloc;
	__typeof__(avfilter_inout_free) *avfilter_inout_free;
	__typeof__(av_buffersrc_add_frame_flags) *av_buffersrc_add_frame_flags;
	__typeof__(av_buffersink_get_frame) *av_buffersink_get_frame;
	__typeof__(av_buffersink_get_time_base) *av_buffersink_get_time_base;
};

/*
 * The loaded functions (the first call loads the library; later calls
 * return the same table or the same failure). NULL when it cannot be
 * loaded, with "filters need libavfilter.so.8: <why>" in err.
 */
const struct ladderd_avfilter *ladderd_avfilter_lazy_get(char *err,
    size_t errsz);

#endif
