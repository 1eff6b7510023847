/*
 * privdrop.h - the daemon started as root (issue 9, finding 13). Every
 * drop is parsed by libavformat: a parser bug must not hand over root. So
 * the daemon refuses to run as root unless told, either by a `user`
 * setting (the daemon sets itself up as root, gives the spool and the
 * top of the status, failed, publish and watch folders (when root owns
 * them: made at start-up) to that user, then
 * initgroups + setgid + setuid for good) or by --allow-root (it runs as
 * root and says so loudly). Functions return 0 or a negative errno with a
 * sentence in err; they do not log.
 */
#ifndef LADDERD_PRIVDROP_H
#define LADDERD_PRIVDROP_H

#include <pwd.h>
#include <stddef.h>

#include "conf.h"

enum ladderd_privdrop_plan {
	LADDERD_PRIV_UNPRIVILEGED, /* not root: nothing to do */
	LADDERD_PRIV_DROP,	   /* root with a `user`: drop after setup */
	LADDERD_PRIV_ROOT,	   /* root with --allow-root: warn */
};

/*
 * Decide before anything is set up. -EPERM: root without a user nor
 * --allow-root; -ENOENT: the user does not exist.
 */
int ladderd_privdrop_plan(const struct ladderd_conf *conf, int allow_root,
    enum ladderd_privdrop_plan *ret, char *err, size_t errlen);

/*
 * Give the folders to conf->user and become it for good (supplementary
 * groups included); checks that root cannot be regained.
 */
int ladderd_privdrop_drop(const struct ladderd_conf *conf, char *err,
    size_t errlen);

/*
 * Become `pw` for good (supplementary groups, gid, uid) and check that
 * root cannot be regained; what ladderd_privdrop_drop ends with, and what
 * the settings worker does before it loads a stage (settings.c).
 */
int ladderd_privdrop_become(const struct passwd *pw, char *err,
    size_t errlen);

#endif
