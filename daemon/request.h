/*
 * request.h - the operator's requests to the running daemon (`ladderd
 * cancel`, `ladderd retry`), through the spool:
 *
 *   spool/requests/<usec>-<pid>.json   {"verb": "cancel", "task_id": "x"}
 *   spool/replies/<usec>-<pid>.json    {"ok": true, "message": "..."}
 *
 * A command writes its request (temp name + rename, so the daemon never
 * reads half of one) and waits with inotify for the reply of the same
 * name. The daemon watches requests/ with inotify in its event loop (no
 * polling), carries each request out, writes the reply, then removes the
 * request. A request made while no daemon runs waits on disk and is carried
 * out at its next start. Who may ask is who may write the spool: the
 * daemon keeps it 0700, so its user and root.
 */
#ifndef LADDERD_REQUEST_H
#define LADDERD_REQUEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Command side. */
int ladderd_request_submit(const char *spool, const char *verb,
    const char *task_id, char *ret_name, size_t size);
int ladderd_request_wait(const char *spool, const char *name, int timeout_ms,
    cJSON **ret_reply);
int ladderd_request_withdraw(const char *spool, const char *name);
int ladderd_request_wait_folder(const char *dir, int timeout_ms,
    int (*check)(void *arg), void *arg);

/* Daemon side. */
int ladderd_request_watch(const char *spool);
typedef int (*ladderd_request_fn)(void *arg, const char *verb,
    const char *task_id, char *message, size_t size);
int ladderd_request_serve(const char *spool, ladderd_request_fn fn,
    void *arg);

#endif
