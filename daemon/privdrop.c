/*
 * privdrop.c - refuse root, or drop it for the `user` setting (see
 * privdrop.h). The supervisor calls ladderd_privdrop_plan() right after
 * loading the config and ladderd_privdrop_drop() after the set-up that may
 * need root (the config file, the spool lock, the watches), before the
 * first drop is looked at or any worker started.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privdrop.h"

int
ladderd_privdrop_plan(const struct ladderd_conf *conf, int allow_root,
    enum ladderd_privdrop_plan *ret, char *err, size_t errlen)
{
	const char *user = conf->user ? conf->user : "";
	struct passwd *pw;

	*ret = LADDERD_PRIV_UNPRIVILEGED;
	if (geteuid() != 0)
		return 0;
	if (user[0] != '\0') {
		errno = 0;
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "user '%s' (the 'user' setting) "
			    "does not exist", user);
			return -ENOENT;
		}
		if (pw->pw_uid == 0) {
			snprintf(err, errlen, "user '%s' is root: set 'user' "
			    "to an unprivileged account", user);
			return -EPERM;
		}
		*ret = LADDERD_PRIV_DROP;
		return 0;
	}
	if (!allow_root) {
		snprintf(err, errlen, "refusing to run as root: every drop is "
		    "parsed by libavformat, a bug there would own the machine; "
		    "set 'user = \"NAME\";' in the config to drop privileges "
		    "after start, run as an unprivileged user, or pass "
		    "--allow-root");
		return -EPERM;
	}
	*ret = LADDERD_PRIV_ROOT;
	return 0;
}

/* chown a tree we own entirely (the spool), never following a symlink. */
static int
privdrop_chown_tree(int atfd, const char *name, uid_t uid, gid_t gid)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd, rc = 0;

	if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (fchownat(atfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return 0;
	fd = openat(atfd, name,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		int r;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((r = privdrop_chown_tree(dirfd(d), de->d_name, uid,
			 gid)) < 0)
			rc = r;
	}
	closedir(d);
	return rc;
}

int
ladderd_privdrop_drop(const struct ladderd_conf *conf, char *err,
    size_t errlen)
{
	const char *const tops[3] = { conf->status, conf->failed,
		conf->publish };
	struct passwd *pw = getpwnam(conf->user);
	uid_t uid;
	gid_t gid;
	int rc;

	if (pw == NULL) {
		snprintf(err, errlen, "user '%s' does not exist", conf->user);
		return -ENOENT;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	/* The spool is ladderd's alone: all of it. */
	if ((rc = privdrop_chown_tree(AT_FDCWD, conf->spool, uid, gid)) < 0) {
		snprintf(err, errlen, "cannot give spool '%s' to user '%s': %s",
		    conf->spool, conf->user, strerror(-rc));
		return rc;
	}
	/*
	 * Of the others (and the watch folders) only the top, when root has
	 * it: we made it at start-up. Its group and mode are kept.
	 */
	for (size_t i = 0; i < 3 + conf->nwatches; i++) {
		const char *dir = i < 3 ? tops[i] : conf->watches[i - 3].path;
		struct stat st;

		if (stat(dir, &st) == 0 && st.st_uid == 0 &&
		    chown(dir, uid, (gid_t)-1) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot give '%s' to user '%s': %s",
			    dir, conf->user, strerror(errno));
			return rc;
		}
	}
	return ladderd_privdrop_become(pw, err, errlen);
}

int
ladderd_privdrop_become(const struct passwd *pw, char *err, size_t errlen)
{
	int rc;

	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot become user '%s': %s",
		    pw->pw_name, strerror(errno));
		return rc;
	}
	/* For good: neither root nor its groups can come back. */
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		snprintf(err, errlen, "root privileges could be regained after "
		    "becoming '%s'", pw->pw_name);
		return -EPERM;
	}
	return 0;
}
