/*
 * watch.h - the ingest folders: inotify watches, directory scans and the
 * rules that decide when a file is complete enough to take.
 */
#ifndef LADDERD_WATCH_H
#define LADDERD_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct ladderd_watchset;

/* Called for every drop that is ready; returns <0 to try it again later. */
typedef int (*ladderd_watch_take_fn)(void *arg, const char *dir,
    const char *name, const char *profile);

struct ladderd_watchset *ladderd_watch_new(const struct ladderd_conf *conf,
    const char *conf_file);
void ladderd_watch_free(struct ladderd_watchset *ws);
int ladderd_watch_fd(const struct ladderd_watchset *ws);
int ladderd_watch_read(struct ladderd_watchset *ws);
int ladderd_watch_conf_changed(struct ladderd_watchset *ws);
uint64_t ladderd_watch_collect(struct ladderd_watchset *ws, uint64_t now_us,
    ladderd_watch_take_fn take, void *arg);

#endif
