/*
 * fuzz_verify_playlist.c - libFuzzer harness for the verify stage's HLS
 * playlist parser (stages/verify.c: verify_master_text and
 * verify_media_text, with the URI checks against a real package folder).
 * The first byte picks the playlist kind (even: master, odd: media); the
 * rest is the playlist's text. The package is a temporary folder made at
 * start-up with a media playlist, segments, an empty file, a folder and a
 * symlink that points outside, so URIs resolve, fail and escape.
 */
#include "../../stages/verify.c"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_call.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_pkg[PATH_MAX];
static struct verify_playlist *fuzz_pls;

static void
fuzz_write(const char *rel, const char *text)
{
	char p[PATH_MAX * 2];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", fuzz_pkg, rel);
	if ((f = fopen(p, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
}

static void
fuzz_cleanup(void)
{
	char cmd[PATH_MAX + 16];

	if (fuzz_pkg[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_pkg);
	(void)system(cmd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[PATH_MAX * 2];
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(fuzz_pkg, sizeof(fuzz_pkg), "%s/ladderd-fuzz-verify.XXXXXX",
	    tmp ? tmp : "/tmp");
	if (mkdtemp(fuzz_pkg) == NULL)
		abort();
	atexit(fuzz_cleanup);
	snprintf(p, sizeof(p), "%s/v0", fuzz_pkg);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/dir", fuzz_pkg);
	(void)mkdir(p, 0755);
	fuzz_write("v0/index.m3u8", "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n"
	    "#EXTINF:4.0,\nseg0.m4s\n#EXT-X-ENDLIST\n");
	fuzz_write("v0/init.mp4", "init");
	fuzz_write("v0/seg0.m4s", "segment");
	fuzz_write("a.m4s", "segment");
	fuzz_write("empty", "");
	snprintf(p, sizeof(p), "%s/out", fuzz_pkg);
	(void)symlink("/etc/hostname", p);
	if ((fuzz_pls = calloc(VERIFY_MAX_PLAYLISTS, sizeof(*fuzz_pls))) ==
	    NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ladderd_call call;
	struct verify v = { 0 };
	char *text, real[PATH_MAX * 2];
	cJSON *ctx = cJSON_CreateObject();

	if (size < 1 || ctx == NULL) {
		cJSON_Delete(ctx);
		return 0;
	}
	if ((text = malloc(size)) == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	fake_call_init(&call, ctx);
	v.call = &call;
	snprintf(v.pkg, sizeof(v.pkg), "%s", fuzz_pkg);
	if (realpath(fuzz_pkg, v.pkg_real) == NULL)
		abort();
	v.pls = fuzz_pls;
	v.checked = cJSON_CreateArray();
	if (data[0] & 1) {
		snprintf(real, sizeof(real), "%s/v0/fuzz.m3u8", v.pkg_real);
		(void)verify_media_text(&v, "v0/fuzz.m3u8", real, text);
	} else {
		(void)verify_master_text(&v, "master.m3u8", text);
	}
	cJSON_Delete(v.checked);
	cJSON_Delete(ctx);
	free(text);
	return 0;
}
