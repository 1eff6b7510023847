/*
 * replay.c - run a libFuzzer harness without libFuzzer: each argument (a
 * file, or a folder of files) is read and passed once to
 * LLVMFuzzerTestOneInput. So `make check` (and its sanitizer pass) replays
 * the seed corpus and every input a fuzzer once crashed on
 * (tests/integration/t0900-fuzz-corpus.sh), with the compiler CI uses;
 * tests/fuzz/run.sh does the fuzzing itself with clang.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (f == NULL) {
		fprintf(stderr, "replay: cannot open '%s'\n", path);
		return -1;
	}
	do {
		if (cap - len < 4096) {
			uint8_t *nb = realloc(buf, cap = cap * 2 + 8192);

			if (nb == NULL) {
				fclose(f);
				free(buf);
				return -1;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	/* Exactly len bytes, as libFuzzer passes them (ASan sees overreads). */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (exact == NULL) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, len);
		free(buf);
		(void)LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	int n = 0, bad = 0;

	if (LLVMFuzzerInitialize)
		(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *de;

		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			bad |= replay_file(argv[i]) < 0;
			n++;
			continue;
		}
		if ((d = opendir(argv[i])) == NULL) {
			bad = 1;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			char p[4096];

			if (de->d_name[0] == '.' ||
			    snprintf(p, sizeof(p), "%s/%s", argv[i],
				de->d_name) >= (int)sizeof(p))
				continue;
			bad |= replay_file(p) < 0;
			n++;
		}
		closedir(d);
	}
	printf("replayed %d input(s)\n", n);
	return bad;
}
