/*
 * stages/download.c - fetch the task's source, or take the dropped file.
 *
 * Reads ctx.task.source and its settings, the config's download = { ... }
 * group (download_settings below: the one place their defaults and ranges
 * live; the daemon validates the config against it). Sets
 * ctx.input = { path, url, bytes, content_type, effective_url } for a URL,
 * ctx.input.path for a local file.
 *
 * A URL from a drop is hostile: every connection (after DNS, on every
 * redirect) goes through netpolicy (README "Network safety"), which refuses
 * loopback, private, link-local and other internal addresses unless
 * download.allow_networks opens them; ctx.task.source_trusted (set for
 * `ladderd run`, whose URL the operator typed) lifts the check. A refused
 * address and an unreachable one give the same message, so failures do
 * not turn the daemon into a port scanner; the body is stored 0600.
 *
 * Invariant: the body goes to <source_dir>/<name>.part, is fsync'd and only
 * then renamed to <name>; a failed transfer unlinks the .part, so a file
 * with the final name is always complete. Network errors, HTTP 5xx/408/429
 * and a full disk are LADDERD_RETRY; everything else (4xx, limits, a scheme
 * that is not allowed, a missing local file) is LADDERD_FAIL.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../daemon/netpolicy_curl.h"
#include "stage.h"

#if LIBCURL_VERSION_NUM < 0x075500
#error "the download stage needs libcurl >= 7.85 (CURLOPT_PROTOCOLS_STR)"
#endif

#define DOWNLOAD_NAME_MAX 128
#define DOWNLOAD_PROTOS_MAX 256

enum {
	DL_PROTOCOLS,
	DL_MAX_REDIRECTS,
	DL_MAX_BYTES,
	DL_CONNECT_TIMEOUT,
	DL_TIMEOUT,
	DL_LOW_SPEED_LIMIT,
	DL_LOW_SPEED_TIME,
	DL_ALLOW_NETWORKS,
	DL__COUNT
};

/* The config's download = { ... } group (ladderd-stages(7)). */
static const struct ladderd_setting download_settings[DL__COUNT + 1] = {
	[DL_PROTOCOLS] = { "download.protocols", LADDERD_SETTING_STRINGS,
	    "http,https", 0, 0, NULL,
	    "URL schemes a task's source may use (lowercase)" },
	[DL_MAX_REDIRECTS] = { "download.max_redirects", LADDERD_SETTING_INT,
	    "5", 0, 50, NULL, "HTTP redirects followed at most" },
	[DL_MAX_BYTES] = { "download.max_bytes", LADDERD_SETTING_INT,
	    "10737418240", 1, 1e15, NULL,
	    "largest body accepted, in bytes (10 GiB)" },
	[DL_CONNECT_TIMEOUT] = { "download.connect_timeout",
	    LADDERD_SETTING_INT, "30", 1, 3600, NULL,
	    "seconds to connect, per attempt" },
	[DL_TIMEOUT] = { "download.timeout", LADDERD_SETTING_INT, "3600", 1,
	    604800, NULL, "seconds for the whole transfer" },
	[DL_LOW_SPEED_LIMIT] = { "download.low_speed_limit",
	    LADDERD_SETTING_INT, "32768", 0, 1e9, NULL,
	    "bytes/s below which a transfer counts as stalled (0: never)" },
	[DL_LOW_SPEED_TIME] = { "download.low_speed_time",
	    LADDERD_SETTING_INT, "30", 1, 86400, NULL,
	    "seconds of stall after which the transfer is abandoned" },
	[DL_ALLOW_NETWORKS] = { "download.allow_networks",
	    LADDERD_SETTING_NETWORKS, "", 0, 0, NULL,
	    "internal networks a URL may reach (README \"Network safety\")" },
	[DL__COUNT] = { NULL, 0, NULL, 0, 0, NULL, NULL },
};

/* One transfer: what the libcurl callbacks share with download_url(). */
struct download_xfer {
	struct ladderd_call *call;
	int fd;
	uint64_t bytes;
	uint64_t max_bytes;
	double reported; /* last progress fraction reported */
	bool too_big;
	bool cancelled;
	int write_errno;
	struct ladderd_netpolicy policy; /* who may be connected to */
	/* The limits of download_settings, checked. */
	double max_redirs, conn_to, total_to, ls_limit, ls_time;
};

/* obj[key] = item, freeing item when the context cannot take it. */
static int
download_set(cJSON *obj, const char *key, cJSON *item)
{
	if (ladderd_ctx_set(obj, key, item) < 0) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	return 0;
}

/* Disk errors that go away by themselves (space freed) are transient. */
static enum ladderd_rc
download_errno_rc(int err)
{
	return err == ENOSPC || err == EDQUOT ? LADDERD_RETRY : LADDERD_FAIL;
}

/* "scheme://..." per RFC 3986 (ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")). */
static bool
download_is_url(const char *s, char *scheme, size_t size)
{
	size_t n = 0;

	if (!isalpha((unsigned char)s[0]))
		return false;
	while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' ||
	    s[n] == '.')
		n++;
	if (strncmp(s + n, "://", 3) != 0)
		return false;
	if (n >= size)
		n = size - 1; /* only used for messages and comparison */
	for (size_t i = 0; i < n; i++)
		scheme[i] = (char)tolower((unsigned char)s[i]);
	scheme[n] = '\0';
	return true;
}

/*
 * Append scheme `p` to `list` ("http,https", for libcurl) and `human`
 * ("http, https", for messages); *allowed becomes true when it is
 * `scheme`. Returns 0, or -EINVAL after call->fail().
 */
static int
download_add_protocol(struct ladderd_call *call, const char *p,
    const char *scheme, char *list, char *human, size_t size, bool *allowed)
{
	size_t len = strlen(list), hlen = strlen(human);
	int n;

	if (p == NULL || *p == '\0' ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(p)) {
		call->fail(call, "download.protocols: invalid entry (want "
				 "lowercase scheme names such as \"https\")");
		return -EINVAL;
	}
	n = snprintf(list + len, size - len, "%s%s", len ? "," : "", p);
	if (n >= 0 && (size_t)n < size - len)
		n = snprintf(human + hlen, size - hlen, "%s%s",
		    hlen ? ", " : "", p);
	if (n < 0 || (size_t)n >= size - hlen) {
		call->fail(call, "download.protocols is too long");
		return -EINVAL;
	}
	if (strcmp(p, scheme) == 0)
		*allowed = true;
	return 0;
}

/*
 * Read download.protocols into `list` as "http,https" (for libcurl) and
 * `human` as "http, https" (for messages); *allowed tells whether `scheme`
 * is one of them. Returns 0, or -EINVAL after call->fail().
 */
static int
download_protocols(struct ladderd_call *call, const char *scheme,
    char *list, char *human, size_t size, bool *allowed)
{
	const struct ladderd_setting *s = &download_settings[DL_PROTOCOLS];
	const cJSON *protos = ladderd_ctx_get(call->ctx, s->name);
	const cJSON *it;

	*allowed = false;
	list[0] = human[0] = '\0';
	if (protos == NULL) {
		/* A context built by hand: the declared default. */
		char buf[DOWNLOAD_PROTOS_MAX], *save = NULL, *tok;

		snprintf(buf, sizeof(buf), "%s", s->dflt);
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save))
			if (download_add_protocol(call, tok, scheme, list,
				human, size, allowed) < 0)
				return -EINVAL;
		return 0;
	}
	if (!cJSON_IsArray(protos)) {
		call->fail(call, "download.protocols must be an array of "
				 "strings");
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, protos)
		if (download_add_protocol(call, cJSON_GetStringValue(it),
			scheme, list, human, size, allowed) < 0)
			return -EINVAL;
	if (list[0] == '\0')
		snprintf(human, size, "none");
	return 0;
}

/*
 * A numeric setting of download_settings[i], checked against its declared
 * range (a context may be built by hand); -EINVAL after call->fail().
 */
static int
download_arg(struct ladderd_call *call, int i, double *ret)
{
	const struct ladderd_setting *s = &download_settings[i];
	const cJSON *it = ladderd_ctx_get(call->ctx, s->name);

	*ret = ladderd_setting_num(call->ctx, s);
	if (it != NULL && (!cJSON_IsNumber(it) || it->valuedouble < s->min ||
			      it->valuedouble > s->max)) {
		call->fail(call, "%s must be a number in [%.0f, %.0f]",
		    s->name, s->min, s->max);
		return -EINVAL;
	}
	return 0;
}

/*
 * Fill x->policy from ctx.download.allow_networks and
 * ctx.task.source_trusted. Returns 0, or -EINVAL after call->fail().
 */
static int
download_policy(struct ladderd_call *call, struct ladderd_netpolicy *p)
{
	const cJSON *nets = ladderd_ctx_get(call->ctx,
	    download_settings[DL_ALLOW_NETWORKS].name);
	const cJSON *it;

	p->trusted = ladderd_ctx_bool(call->ctx, "task.source_trusted", 0);
	if (nets == NULL)
		return 0;
	if (!cJSON_IsArray(nets)) {
		call->fail(call, "download.allow_networks must be an array of "
				 "CIDR strings");
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, nets) {
		const char *c = cJSON_GetStringValue(it);

		if (c == NULL || ladderd_netpolicy_allow(p, c) < 0) {
			call->fail(call, "download.allow_networks: '%s' is not "
					 "a CIDR (at most %d of them)",
			    c ? c : "?", LADDERD_NETPOLICY_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The file name for a URL: the last component of its path, percent-decoded,
 * every byte outside [A-Za-z0-9._-] replaced by '_', no leading dot (so
 * never ".", ".." or hidden), "source" when nothing is left.
 */
static void
download_name(CURLU *u, char *name, size_t size)
{
	char *path = NULL;
	char *dec = NULL;
	const char *last;
	size_t n = 0;

	snprintf(name, size, "source");
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
	    path == NULL)
		goto out;
	last = strrchr(path, '/');
	last = last ? last + 1 : path;
	if ((dec = curl_easy_unescape(NULL, last, 0, NULL)) == NULL)
		goto out;
	for (const char *p = dec; *p != '\0' && n + 1 < size; p++) {
		char c = *p;

		if (!isalnum((unsigned char)c) && c != '.' && c != '_' &&
		    c != '-')
			c = '_';
		if (n == 0 && c == '.')
			c = '_';
		name[n++] = c;
	}
	if (n > 0)
		name[n] = '\0';
out:
	curl_free(dec);
	curl_free(path);
}

/* CURLOPT_WRITEFUNCTION: append to the .part file, enforcing max_bytes. */
static size_t
download_write(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct download_xfer *x = opaque;
	size_t len = size * nmemb;
	size_t done = 0;

	/*
	 * Counted here too: a chunked (or lying) response has no length for
	 * CURLOPT_MAXFILESIZE_LARGE to check up front.
	 */
	if (len > x->max_bytes - x->bytes) {
		x->too_big = true;
		return 0; /* anything short of len aborts the transfer */
	}
	while (done < len) {
		ssize_t w = write(x->fd, data + done, len - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			x->write_errno = errno;
			return 0;
		}
		done += (size_t)w;
	}
	x->bytes += len;
	return len;
}

/* CURLOPT_XFERINFOFUNCTION: progress when the length is known, cancel. */
static int
download_xferinfo(void *opaque, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct download_xfer *x = opaque;
	struct ladderd_call *call = x->call;

	(void)ultotal;
	(void)ulnow;
	if (call->cancelled != NULL && call->cancelled(call)) {
		x->cancelled = true;
		return 1;
	}
	if (dltotal > 0 && call->progress != NULL) {
		double f = dlnow >= dltotal ? 1.0 :
		    (double)dlnow / (double)dltotal;

		/*
		 * libcurl calls this often, even when idle: report changes
		 * only. 1.0 waits for the rename (a redirect's own body can
		 * be "complete" too); a new response after a redirect starts
		 * over.
		 */
		if (f < 1.0 && (f >= x->reported + 0.001 || f < x->reported)) {
			call->progress(call, f);
			x->reported = f;
		}
	}
	return 0;
}

/*
 * Record a failed transfer (curl result `res`) with a message and return
 * whether it is worth retrying.
 */
static enum ladderd_rc
download_failed(struct ladderd_call *call, CURL *curl, CURLcode res,
    const struct download_xfer *x, const char *url, const char *part,
    const char *errbuf)
{
	long code = 0;

	if (x->too_big || res == CURLE_FILESIZE_EXCEEDED) {
		call->fail(call, "GET %s: body exceeds download.max_bytes "
				 "(%llu bytes)", url,
		    (unsigned long long)x->max_bytes);
		return LADDERD_FAIL;
	}
	if (x->write_errno != 0) {
		call->fail(call, "cannot write '%s': %s", part,
		    strerror(x->write_errno));
		return download_errno_rc(x->write_errno);
	}
	if (x->cancelled) {
		call->fail(call, "GET %s: cancelled", url);
		return LADDERD_RETRY;
	}
	if (res == CURLE_HTTP_RETURNED_ERROR) {
		(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
		call->fail(call, "GET %s: HTTP %ld", url, code);
		/* 408 and 429 are the server asking to come back later. */
		return code >= 500 || code == 408 || code == 429 ?
		    LADDERD_RETRY : LADDERD_FAIL;
	}
	if (res == CURLE_COULDNT_CONNECT ||
	    (res == CURLE_OPERATION_TIMEDOUT && x->policy.refused > 0)) {
		/*
		 * One message whether the address was refused by policy, the
		 * port closed or the host unreachable: whoever wrote the URL
		 * reads it, and must not learn what listens where.
		 */
		call->fail(call, "GET %s: cannot connect to the server", url);
		if (x->policy.refused > 0) {
			call->log(call, LADDERD_LOG_DEBUG, "GET %s: %u "
			    "address(es) refused by download.allow_networks "
			    "policy", url, x->policy.refused);
			return LADDERD_FAIL; /* the same next time */
		}
		return LADDERD_RETRY;
	}
	call->fail(call, "GET %s: %s", url,
	    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(res));
	switch (res) {
	case CURLE_UNSUPPORTED_PROTOCOL: /* a redirect to a refused scheme */
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_URL_MALFORMAT:
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_FILE_NOT_FOUND:
	case CURLE_REMOTE_ACCESS_DENIED:
		return LADDERD_FAIL;
	default:
		return LADDERD_RETRY; /* the network: try again later */
	}
}

/*
 * The limits of download_settings into x (max_bytes too), each checked
 * against its declared range. Returns 0, or -EINVAL after call->fail().
 */
static int
download_limits(struct ladderd_call *call, struct download_xfer *x)
{
	double max_bytes;

	if (download_arg(call, DL_MAX_REDIRECTS, &x->max_redirs) < 0 ||
	    download_arg(call, DL_MAX_BYTES, &max_bytes) < 0 ||
	    download_arg(call, DL_CONNECT_TIMEOUT, &x->conn_to) < 0 ||
	    download_arg(call, DL_TIMEOUT, &x->total_to) < 0 ||
	    download_arg(call, DL_LOW_SPEED_LIMIT, &x->ls_limit) < 0 ||
	    download_arg(call, DL_LOW_SPEED_TIME, &x->ls_time) < 0)
		return -EINVAL;
	x->max_bytes = (uint64_t)max_bytes;
	return 0;
}

/*
 * Whether an earlier run of this task already fetched `url` (the daemon
 * died between our rename and its checkpoint): the file the context
 * names is there with the size it recorded.
 */
static bool
download_fetched_before(struct ladderd_call *call, const char *url)
{
	const char *prev = ladderd_ctx_str(call->ctx, "input.url", NULL);
	const char *path = ladderd_ctx_str(call->ctx, "input.path", NULL);
	struct stat st;

	return prev != NULL && strcmp(prev, url) == 0 && path != NULL &&
	    stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (double)st.st_size == ladderd_ctx_num(call->ctx, "input.bytes",
		-1);
}

/*
 * Create folder `dir` and open `part` in it for the body, mode 0600: the
 * body is whatever the URL served, and it may end up in the failed
 * folder; publishing makes its own files. O_TRUNC: a .part left by a
 * crashed attempt is started over. LADDERD_OK with *ret_fd, else the rc
 * after call->fail().
 */
static enum ladderd_rc
download_open_part(struct ladderd_call *call, const char *dir,
    const char *part, int *ret_fd)
{
	int err;

	if ((err = call->mkdirs(call, dir)) < 0) {
		call->fail(call, "cannot create '%s': %s", dir,
		    strerror(-err));
		return download_errno_rc(-err);
	}
	*ret_fd = open(part,
	    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*ret_fd < 0) {
		call->fail(call, "cannot create '%s': %s", part,
		    strerror(errno));
		return download_errno_rc(errno);
	}
	/* A .part of an older run was 0644 (the caller unlinks it). */
	if (fchmod(*ret_fd, 0600) < 0) {
		call->fail(call, "cannot chmod '%s': %s", part,
		    strerror(errno));
		return download_errno_rc(errno);
	}
	return LADDERD_OK;
}

/*
 * A libcurl handle for the transfer x describes: `protos` only (also on
 * redirects), the address policy on every connection, x's limits, the
 * body into x->fd. NULL after x->call->fail().
 */
static CURL *
download_curl_new(struct download_xfer *x, const char *protos,
    const char *source, char *errbuf)
{
	CURL *curl = NULL;

	/*
	 * curl_easy_init() runs curl_global_init(CURL_GLOBAL_DEFAULT) on
	 * first use. That call is not thread safe, which is fine here: the
	 * job process runs stages one at a time and has no threads of its
	 * own. It is deliberately not in init(), which must stay side-effect
	 * free (check-config calls it), and there is no curl_global_cleanup()
	 * since stage objects stay loaded until the process exits.
	 */
	if ((curl = curl_easy_init()) == NULL) {
		x->call->fail(x->call, "cannot initialise libcurl");
		goto fail;
	}
	/*
	 * Unchecked setopt results below could only be CURLE_OUT_OF_MEMORY or
	 * an unknown option; both would make the transfer fail visibly. The
	 * protocol lists are checked: silently allowing every scheme is not
	 * an acceptable fallback.
	 */
	if (curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protos) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, protos) !=
		CURLE_OK) {
		x->call->fail(x->call,
		    "libcurl refuses download.protocols '%s'", protos);
		goto fail;
	}
	if (ladderd_netpolicy_curl(curl, &x->policy) < 0) {
		x->call->fail(x->call, "libcurl refuses the address policy callback");
		goto fail;
	}
	(void)curl_easy_setopt(curl, CURLOPT_URL, source);
	(void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	/* No SIGALRM for DNS timeouts: the daemon owns its signals. */
	(void)curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(curl, CURLOPT_USERAGENT, "ladderd-download/1");
	(void)curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	/* With follow on, a redirect beyond the limit is an error. */
	(void)curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)x->max_redirs);
	/* >= 400 is an error, so an error page never lands in the file. */
	(void)curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
	(void)curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)x->max_bytes);
	(void)curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(x->conn_to * 1000));
	(void)curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
	    (long)(x->total_to * 1000));
	(void)curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, (long)x->ls_limit);
	(void)curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)x->ls_time);
	(void)curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	(void)curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, download_write);
	(void)curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
	(void)curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
	    download_xferinfo);
	(void)curl_easy_setopt(curl, CURLOPT_XFERINFODATA, x);
	(void)curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);

	return curl;
fail:
	curl_easy_cleanup(curl);
	return NULL;
}

/*
 * FAILONERROR catches >= 400; a 3xx left over (no Location, or follow
 * disabled by a 304) is not the file either. false after call->fail().
 */
static bool
download_http_ok(struct ladderd_call *call, CURL *curl, const char *url)
{
	const char *s = NULL;
	long code = 0;

	(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (code == 0 || (code >= 200 && code <= 299))
		return true;
	(void)curl_easy_getinfo(curl, CURLINFO_SCHEME, &s);
	if (s != NULL &&
	    (strcasecmp(s, "http") == 0 || strcasecmp(s, "https") == 0)) {
		call->fail(call, "GET %s: HTTP %ld", url, code);
		return false;
	}
	return true;
}

/*
 * The finished transfer into ctx.input: path, url, bytes, content_type
 * and, after redirects, effective_url. Returns 0, or -1 after
 * call->fail().
 */
static int
download_record(struct ladderd_call *call, CURL *curl,
    const struct download_xfer *x, const char *url, const char *final)
{
	char *eff = NULL;   /* libcurl's, not ours: never freed */
	char *ctype = NULL; /* libcurl's, not ours: never freed */
	long redirs = 0;
	cJSON *input;

	(void)curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype);
	(void)curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &eff);
	(void)curl_easy_getinfo(curl, CURLINFO_REDIRECT_COUNT, &redirs);
	if ((input = ladderd_ctx_obj(call->ctx, "input")) == NULL ||
	    download_set(input, "path", cJSON_CreateString(final)) < 0 ||
	    download_set(input, "url", cJSON_CreateString(url)) < 0 ||
	    download_set(input, "bytes",
		cJSON_CreateNumber((double)x->bytes)) < 0 ||
	    download_set(input, "content_type", ctype ?
		cJSON_CreateString(ctype) : cJSON_CreateNull()) < 0) {
		call->fail(call, "cannot store input in the context");
		return -1;
	}
	/* Where redirects ended, without credentials (curl keeps them). */
	if (eff != NULL && redirs > 0) {
		CURLU *e = curl_url();
		char *clean = NULL;

		if (e != NULL &&
		    curl_url_set(e, CURLUPART_URL, eff,
			CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
		    curl_url_set(e, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
		    curl_url_get(e, CURLUPART_URL, &clean, 0) == CURLUE_OK)
			(void)download_set(input, "effective_url",
			    cJSON_CreateString(clean));
		curl_free(clean);
		curl_url_cleanup(e);
	}
	return 0;
}

/* Download `source` (a URL whose scheme is `scheme`) into the source dir. */
static enum ladderd_rc
download_url(struct ladderd_call *call, const char *source,
    const char *scheme)
{
	enum ladderd_rc rc = LADDERD_FAIL;
	CURL *curl = NULL;
	CURLU *u = NULL;
	CURLUcode uc;
	CURLcode res;
	char *url = NULL;     /* `source` without credentials, for messages */
	char protos[DOWNLOAD_PROTOS_MAX], human[DOWNLOAD_PROTOS_MAX];
	char name[DOWNLOAD_NAME_MAX];
	char dir[PATH_MAX], part[PATH_MAX], final[PATH_MAX];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct download_xfer x = { .call = call, .fd = -1 };
	bool allowed, have_part = false;
	int n, err;

	if (download_protocols(call, scheme, protos, human, sizeof(protos),
		&allowed) < 0)
		goto out;
	if (!allowed) {
		call->fail(call, "URL scheme '%s' is not allowed (allowed: %s)",
		    scheme, human);
		goto out;
	}
	if (download_limits(call, &x) < 0 ||
	    download_policy(call, &x.policy) < 0)
		goto out;

	if ((u = curl_url()) == NULL) {
		call->fail(call, "cannot allocate a URL handle");
		goto out;
	}
	/* Scheme-agnostic: the allow list above is the policy, not libcurl. */
	if ((uc = curl_url_set(u, CURLUPART_URL, source,
		 CURLU_NON_SUPPORT_SCHEME)) != CURLUE_OK) {
		call->fail(call, "invalid URL '%s': %s", source,
		    curl_url_strerror(uc));
		goto out;
	}
	download_name(u, name, sizeof(name));
	/* Credentials in the URL must not reach messages or the context. */
	(void)curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		call->fail(call, "invalid URL '%s'", source);
		goto out;
	}

	if ((err = call->path(call, LADDERD_PATH_SOURCE_DIR, NULL, dir,
		 sizeof(dir))) < 0) {
		call->fail(call, "cannot get the source folder: %s",
		    strerror(-err));
		goto out;
	}
	n = snprintf(final, sizeof(final), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(final) ||
	    (n = snprintf(part, sizeof(part), "%s.part", final)) < 0 ||
	    (size_t)n >= sizeof(part)) {
		call->fail(call, "source folder path '%s' is too long", dir);
		goto out;
	}

	if (download_fetched_before(call, url)) {
		rc = LADDERD_SKIP;
		goto out;
	}
	rc = download_open_part(call, dir, part, &x.fd);
	have_part = x.fd >= 0;
	if (rc != LADDERD_OK)
		goto out;
	rc = LADDERD_FAIL;

	if ((curl = download_curl_new(&x, protos, source, errbuf)) == NULL)
		goto out;
	call->log(call, LADDERD_LOG_INFO, "GET %s -> '%s'", url, final);
	if ((res = curl_easy_perform(curl)) != CURLE_OK) {
		rc = download_failed(call, curl, res, &x, url, part, errbuf);
		goto out;
	}
	if (!download_http_ok(call, curl, url))
		goto out;

	err = close(x.fd);
	x.fd = -1;
	if (err < 0) {
		call->fail(call, "cannot close '%s': %s", part, strerror(errno));
		rc = download_errno_rc(errno);
		goto out;
	}
	/* fsync, rename, fsync of the folder: the host's durable commit. */
	if ((err = call->commit_file(call, part, final)) < 0) {
		call->fail(call, "cannot commit '%s' as '%s': %s", part, final,
		    strerror(-err));
		rc = download_errno_rc(-err);
		goto out;
	}
	have_part = false;
	if (call->progress != NULL)
		call->progress(call, 1.0);

	if (download_record(call, curl, &x, url, final) < 0)
		goto out;
	call->log(call, LADDERD_LOG_INFO, "GET %s: %llu bytes", url,
	    (unsigned long long)x.bytes);
	rc = LADDERD_OK;
out:
	if (x.fd >= 0)
		(void)close(x.fd);
	if (have_part)
		(void)unlink(part);
	curl_easy_cleanup(curl);
	curl_free(url);
	curl_url_cleanup(u);
	return rc;
}

/* A local source: make ctx.input.path its absolute path. */
static enum ladderd_rc
download_local(struct ladderd_call *call, const char *source)
{
	char abs[PATH_MAX];
	struct stat st;
	cJSON *input;

	/* The daemon claimed the dropped file into the spool: keep that. */
	if (ladderd_ctx_str(call->ctx, "input.path", NULL) != NULL)
		return LADDERD_SKIP;
	if (realpath(source, abs) == NULL || stat(abs, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			call->fail(call, "source '%s' not found", source);
		else
			call->fail(call, "cannot resolve source '%s': %s",
			    source, strerror(errno));
		return LADDERD_FAIL;
	}
	if (!S_ISREG(st.st_mode)) {
		call->fail(call, "source '%s' not found (not a regular file)",
		    source);
		return LADDERD_FAIL;
	}
	if ((input = ladderd_ctx_obj(call->ctx, "input")) == NULL ||
	    download_set(input, "path", cJSON_CreateString(abs)) < 0) {
		call->fail(call, "cannot store input in the context");
		return LADDERD_FAIL;
	}
	return LADDERD_SKIP; /* nothing had to be fetched */
}

static enum ladderd_rc
download_run(void *state, struct ladderd_call *call)
{
	const char *source = ladderd_ctx_str(call->ctx, "task.source", NULL);
	char scheme[32];

	(void)state;
	if (source == NULL || *source == '\0') {
		if (ladderd_ctx_str(call->ctx, "input.path", NULL) != NULL)
			return LADDERD_SKIP;
		call->fail(call, "context has no task.source");
		return LADDERD_FAIL;
	}
	if (download_is_url(source, scheme, sizeof(scheme)))
		return download_url(call, source, scheme);
	return download_local(call, source);
}

LADDERD_STAGE_DEFINE_SETTINGS("download", "1.0", "downloading",
    download_settings, NULL, download_run, NULL);
