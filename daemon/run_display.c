/*
 * run_display.c - the terminal display of `ladderd run` (run_display.h).
 *
 * On a terminal `ladderd run` splits in two: this process draws, and a
 * child (fork + exec of ladderd with the same arguments) runs the task
 * with its stderr, and its workers', on a pipe and a feed of JSON lines on
 * another (LADDERD_RUN_FEED names the descriptor): {"progress": ...} about
 * twice a second while rungs run and {"summary": ...} at the end. So no
 * process writes into the progress area behind the display's back: every
 * log line comes through here, is printed above the area (clear, print,
 * redraw), and the area is redrawn in place. Lines are cut to the
 * terminal's width so the area never wraps (the cursor moves up by lines).
 * The child logs warnings and errors only (LADDERD_QUIET) unless -v.
 * No colour is used, so NO_COLOR holds by construction.
 *
 * Exit status is the child's (128 + signal if it was killed).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "ctx.h"
#include "exe.h"
#include "fsutil.h"
#include "run_display.h"

#define RD_MAX_RUNGS 16
#define RD_BAR 20
#define RD_LINE 4096

struct rd_rung {
	char name[64];
	char state[32];
	double progress;
	double fps;	  /* smoothed encode rate, frames/s */
	double last_p;	  /* progress at last_t */
	double last_t;
};

struct rd {
	FILE *tty;	/* the terminal (stderr) */
	int cols;
	int drawn;	/* lines of the progress area on screen */
	char task_id[80];
	char state[32];
	double frames;	/* the source's frame count (probe), 0 unknown */
	double t0;	/* when the display started */
	double chord_t0; /* first progress feed */
	struct rd_rung rungs[RD_MAX_RUNGS];
	int nrungs;
	cJSON *summary;
	char errbuf[RD_LINE], feedbuf[1 << 16];
	size_t errlen, feedlen;
};

static volatile sig_atomic_t rd_child = -1;

static void
rd_forward(int sig)
{
	if (rd_child > 0)
		(void)kill(rd_child, sig);
}

/* Seconds on the monotonic clock. */
static double
rd_now(void)
{
	return (double)ladderd_clock_mono_us() / 1e6;
}

static void
rd_clock(double s, char *buf, size_t size)
{
	long t = s < 0 ? 0 : lround(s);

	snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* Print `s` cut to the terminal's width, then a newline. */
static void
rd_put(struct rd *d, const char *s)
{
	int max = d->cols > 1 ? d->cols - 1 : 79;

	fprintf(d->tty, "\r\033[K%.*s\n", max, s);
}

/*
 * Move to the first line of the progress area; with `erase`, blank its
 * lines first. Line by line (EL), not "erase below" (ED): some terminals
 * (tmux's scroll-on-clear) push the screen into the scroll-back when ED
 * clears it from the top, which would leave a copy of the area there.
 */
static void
rd_home(struct rd *d, int erase)
{
	if (d->drawn > 0)
		fprintf(d->tty, "\033[%dA", d->drawn);
	if (erase && d->drawn > 0) {
		for (int i = 0; i < d->drawn; i++)
			fputs("\r\033[K\n", d->tty);
		fprintf(d->tty, "\033[%dA", d->drawn);
	}
	fputc('\r', d->tty);
	d->drawn = 0;
}

static void
rd_draw(struct rd *d)
{
	char line[RD_LINE], el[32], eta[48] = "";
	double now = rd_now(), low = 1;
	int video = 0;

	/* Redrawn over itself: the area only grows (rungs are added). */
	rd_home(d, 0);
	for (int i = 0; i < d->nrungs; i++) {
		if (d->rungs[i].progress < low)
			low = d->rungs[i].progress;
		video = 1;
	}
	rd_clock(now - d->t0, el, sizeof(el));
	/*
	 * The task's ETA: the slowest rung's rate since the rungs started
	 * (the packaging after them is short next to encoding).
	 */
	if (video && low > 0.02 && low < 1 && d->chord_t0 > 0) {
		char t[32];

		rd_clock((now - d->chord_t0) * (1 - low) / low, t, sizeof(t));
		snprintf(eta, sizeof(eta), "  ETA %s", t);
	}
	snprintf(line, sizeof(line), "%s  %-12s %s elapsed%s", d->task_id,
	    d->state[0] ? d->state : "starting", el, eta);
	rd_put(d, line);
	d->drawn++;
	for (int i = 0; i < d->nrungs; i++) {
		const struct rd_rung *r = &d->rungs[i];
		char bar[RD_BAR + 1], fps[24] = "";
		int fill = (int)(r->progress * RD_BAR + 0.5);

		for (int k = 0; k < RD_BAR; k++)
			bar[k] = k < fill ? '#' : '-';
		bar[RD_BAR] = '\0';
		if (r->fps > 0 && r->progress < 1)
			snprintf(fps, sizeof(fps), "%6.0f fps", r->fps);
		snprintf(line, sizeof(line), "  %-10s [%s] %3.0f%%  %-10s %s",
		    r->name, bar, r->progress * 100, fps, r->state);
		rd_put(d, line);
		d->drawn++;
	}
	fflush(d->tty);
}

/* A log line of the child: above the area, without its timestamp. */
static void
rd_log_line(struct rd *d, char *s)
{
	/* "2026-11-28T10:00:00.000Z ladderd[12]: warning: ..." */
	if (strlen(s) > 25 && s[4] == '-' && s[10] == 'T' && s[24] == ' ')
		s += 25;
	rd_home(d, 1);
	fprintf(d->tty, "%s\033[K\n", s);
	rd_draw(d);
}

static struct rd_rung *
rd_rung(struct rd *d, const char *name)
{
	for (int i = 0; i < d->nrungs; i++)
		if (strcmp(d->rungs[i].name, name) == 0)
			return &d->rungs[i];
	if (d->nrungs == RD_MAX_RUNGS)
		return NULL;
	memset(&d->rungs[d->nrungs], 0, sizeof(d->rungs[0]));
	snprintf(d->rungs[d->nrungs].name, sizeof(d->rungs[0].name), "%s",
	    name);
	return &d->rungs[d->nrungs++];
}

static void
rd_progress(struct rd *d, const cJSON *p)
{
	const cJSON *r;
	double now = rd_now();

	snprintf(d->state, sizeof(d->state), "%s",
	    ladderd_ctx_str(p, "state", ""));
	d->frames = ladderd_ctx_num(p, "frames", 0);
	if (d->chord_t0 == 0)
		d->chord_t0 = now;
	cJSON_ArrayForEach(r, ladderd_ctx_get(p, "rungs")) {
		const char *name = ladderd_ctx_str(r, "name", "");
		struct rd_rung *x;
		double prog = ladderd_ctx_num(r, "progress", 0);

		/* Internal units ("_decode") are no rung of the user's. */
		if (name[0] == '\0' || name[0] == '_' ||
		    (x = rd_rung(d, name)) == NULL)
			continue;
		snprintf(x->state, sizeof(x->state), "%s",
		    ladderd_ctx_str(r, "state", ""));
		if (x->last_t > 0 && now - x->last_t >= 0.4 && d->frames > 0 &&
		    strcmp(ladderd_ctx_str(r, "kind", "video"), "audio") != 0) {
			double f = (prog - x->last_p) * d->frames /
			    (now - x->last_t);

			if (f >= 0)
				x->fps = x->fps > 0 ? 0.5 * x->fps + 0.5 * f :
						      f;
		}
		if (x->last_t == 0 || now - x->last_t >= 0.4) {
			x->last_p = prog;
			x->last_t = now;
		}
		x->progress = prog < 0 ? 0 : prog > 1 ? 1 : prog;
	}
}

static void
rd_feed_line(struct rd *d, const char *s)
{
	cJSON *j = cJSON_Parse(s);
	cJSON *sum;

	if (j == NULL)
		return;
	if (ladderd_ctx_get(j, "progress"))
		rd_progress(d, ladderd_ctx_get(j, "progress"));
	if ((sum = cJSON_DetachItemFromObject(j, "summary")) != NULL) {
		cJSON_Delete(d->summary);
		d->summary = sum;
	}
	cJSON_Delete(j);
}

/*
 * Read what is there on fd into buf, call fn for each complete line.
 * Returns 0 at end of file, 1 otherwise. An over-long line is cut.
 */
static int
rd_read(struct rd *d, int fd, char *buf, size_t size, size_t *len,
    void (*fn)(struct rd *, char *))
{
	ssize_t n = read(fd, buf + *len, size - 1 - *len);
	char *nl;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0) {
		if (*len > 0) {
			buf[*len] = '\0';
			fn(d, buf);
			*len = 0;
		}
		return 0;
	}
	*len += (size_t)n;
	buf[*len] = '\0';
	while ((nl = memchr(buf, '\n', *len)) != NULL) {
		size_t k = (size_t)(nl - buf) + 1;

		*nl = '\0';
		fn(d, buf);
		memmove(buf, buf + k, *len - k);
		*len -= k;
		buf[*len] = '\0';
	}
	if (*len == size - 1) {
		fn(d, buf);
		*len = 0;
	}
	return 1;
}

static void
rd_feed_cb(struct rd *d, char *s)
{
	rd_feed_line(d, s);
}

static void
rd_kbit(double bps, char *buf, size_t size)
{
	if (bps > 0)
		snprintf(buf, size, "%.0f", bps / 1000);
	else
		snprintf(buf, size, "-");
}

/* The summary table: rungs, measured bit rates, package paths. */
static void
rd_summary(struct rd *d, int out_is_tty)
{
	const cJSON *r, *p;

	/* A failed run has no package: its error is already on screen. */
	if (d->summary == NULL ||
	    strcmp(ladderd_ctx_str(d->summary, "state", ""), "complete") != 0)
		return;
	fprintf(d->tty, "%-10s %-10s %-14s %12s %12s\n", "rung", "size",
	    "codec", "peak kbit/s", "avg kbit/s");
	cJSON_ArrayForEach(r, ladderd_ctx_get(d->summary, "rungs")) {
		char size[32] = "-", peak[24], avg[24];
		double w = ladderd_ctx_num(r, "width", 0);
		double h = ladderd_ctx_num(r, "height", 0);

		if (w > 0 && h > 0)
			snprintf(size, sizeof(size), "%.0fx%.0f", w, h);
		rd_kbit(ladderd_ctx_num(r, "peak_bitrate", 0), peak,
		    sizeof(peak));
		rd_kbit(ladderd_ctx_num(r, "avg_bitrate", 0), avg, sizeof(avg));
		fprintf(d->tty, "%-10s %-10s %-14s %12s %12s\n",
		    ladderd_ctx_str(r, "name", "?"), size,
		    ladderd_ctx_str(r, "codec", "-"), peak, avg);
	}
	cJSON_ArrayForEach(p, ladderd_ctx_get(d->summary, "packages")) {
		if (!cJSON_IsString(p))
			continue;
		fprintf(d->tty, "%-10s %s\n",
		    p == ladderd_ctx_get(d->summary, "packages")->child ?
			"package" :
			"",
		    p->valuestring);
		/* Scripts read the paths from stdout, as without a display. */
		if (!out_is_tty)
			printf("%s\n", p->valuestring);
	}
	fflush(stdout);
}

int
ladderd_run_display(int argc, char **argv, int verbose)
{
	struct rd *d = NULL;
	int errp[2] = { -1, -1 }, feedp[2] = { -1, -1 };
	int code = 1, status = 0, err_open = 1, feed_open = 1;
	char **cargv = NULL;
	struct sigaction sa = { .sa_handler = rd_forward }, ign = {
		.sa_handler = SIG_IGN
	};
	struct winsize ws;
	pid_t pid;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (cargv = calloc((size_t)argc + 2, sizeof(*cargv))) == NULL)
		goto fallback;
	if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(feedp, O_CLOEXEC) < 0)
		goto fallback;
	cargv[0] = (char *)"ladderd";
	for (int i = 0; i < argc; i++)
		cargv[i + 1] = argv[i];
	if ((pid = fork()) < 0)
		goto fallback;
	if (pid == 0) {
		/* The task runs here; its stderr and the feed are pipes. */
		if (dup2(errp[1], STDERR_FILENO) < 0 || dup2(feedp[1], 3) < 0 ||
		    setenv("LADDERD_RUN_FEED", "3", 1) < 0 ||
		    (!verbose && setenv("LADDERD_QUIET", "1", 1) < 0))
			_exit(127);
		execv(ladderd_exe_path(), cargv);
		_exit(127);
	}
	rd_child = pid;
	close(errp[1]);
	close(feedp[1]);
	errp[1] = feedp[1] = -1;
	/*
	 * ^C reaches the child from the terminal (same process group): it
	 * stops its rungs and exits; this process only waits for that. A
	 * SIGTERM sent to this process alone is passed on.
	 */
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &ign, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	d->tty = stderr;
	d->cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ?
	    ws.ws_col :
	    80;
	d->t0 = rd_now();
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--task-id") == 0 || strcmp(argv[i], "-t") == 0)
			snprintf(d->task_id, sizeof(d->task_id), "%s",
			    argv[i + 1]);
	if (d->task_id[0] == '\0')
		snprintf(d->task_id, sizeof(d->task_id), "task");
	rd_draw(d);
	while (err_open || feed_open) {
		struct pollfd pf[2] = {
			{ .fd = err_open ? errp[0] : -1, .events = POLLIN },
			{ .fd = feed_open ? feedp[0] : -1, .events = POLLIN },
		};
		int n = poll(pf, 2, 500); /* the clock and ETA tick */

		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && pf[0].revents)
			err_open = rd_read(d, errp[0], d->errbuf,
			    sizeof(d->errbuf), &d->errlen, rd_log_line);
		if (n > 0 && pf[1].revents)
			feed_open = rd_read(d, feedp[0], d->feedbuf,
			    sizeof(d->feedbuf), &d->feedlen, rd_feed_cb);
		rd_draw(d);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rd_home(d, 1);
	fflush(d->tty);
	rd_summary(d, isatty(STDOUT_FILENO));
	code = WIFEXITED(status) ? WEXITSTATUS(status) :
				   128 + WTERMSIG(status);
	goto out;
fallback:
	code = -1; /* the caller runs the task without a display */
out:
	for (int i = 0; i < 2; i++) {
		if (errp[i] >= 0)
			close(errp[i]);
		if (feedp[i] >= 0)
			close(feedp[i]);
	}
	if (d)
		cJSON_Delete(d->summary);
	free(d);
	free(cargv);
	return code;
}
