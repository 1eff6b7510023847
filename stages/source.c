/*
 * stages/source.c - open a task's source for demuxing from a checked
 * descriptor, with a container whitelist and no further opens (see
 * source.h for why).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/avstring.h>
#include <libavutil/mem.h>

#include "source.h"

#define SOURCE_IO_BUFFER (64 * 1024)

static int
source_read(void *opaque, uint8_t *buf, int size)
{
	struct ladderd_source *src = opaque;
	ssize_t n;

	do
		n = read(src->fd, buf, (size_t)size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return AVERROR(errno);
	return n == 0 ? AVERROR_EOF : (int)n;
}

static int64_t
source_seek(void *opaque, int64_t offset, int whence)
{
	struct ladderd_source *src = opaque;
	struct stat st;
	off_t pos;

	if (whence & AVSEEK_SIZE)
		return fstat(src->fd, &st) < 0 ? AVERROR(errno) :
						 (int64_t)st.st_size;
	pos = lseek(src->fd, (off_t)offset, whence & ~AVSEEK_FORCE);
	return pos < 0 ? AVERROR(errno) : (int64_t)pos;
}

/* A demuxer wants another file (a playlist entry, a segment): never. */
static int
source_io_open(AVFormatContext *s, AVIOContext **pb, const char *url,
    int flags, AVDictionary **options)
{
	(void)s;
	(void)pb;
	(void)url;
	(void)flags;
	(void)options;
	return AVERROR(EPERM);
}

/* The first name of a demuxer ("mov" of "mov,mp4,m4a,3gp,3g2,mj2"). */
static void
source_short_name(const char *names, char *buf, size_t size)
{
	size_t n = strcspn(names, ",");

	if (n >= size)
		n = size - 1;
	memcpy(buf, names, n);
	buf[n] = '\0';
}

static int
source_allowed(const AVInputFormat *ifmt, const char *list)
{
	return ifmt != NULL && av_match_list(ifmt->name, list, ',') > 0;
}

/* ladderd_source_open with the container whitelist `list`. */
static int
source_open(struct ladderd_source *src, const char *path, const char *format,
    const AVIOInterruptCB *cb, const char *list, char *err, size_t errlen)
{
	const AVInputFormat *ifmt = NULL;
	AVDictionary *opts = NULL;
	unsigned char *buf = NULL;
	char name[64];
	struct stat st;
	int rc, probed = format == NULL || format[0] == '\0';

	/* O_NONBLOCK: opening a FIFO must not hang the stage. */
	src->fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		O_CLOEXEC);
	if (src->fd < 0) {
		rc = AVERROR(errno);
		if (errno == ELOOP)
			snprintf(err, errlen, "'%s' is a symbolic link: a "
			    "source must be a regular file", path);
		else
			snprintf(err, errlen, "cannot open '%s': %s", path,
			    strerror(errno));
		return rc;
	}
	if (fstat(src->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a regular file", path);
		return AVERROR(EINVAL);
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "source file is empty: '%s'", path);
		return AVERROR_INVALIDDATA;
	}
	(void)fcntl(src->fd, F_SETFL, 0);
	if ((buf = av_malloc(SOURCE_IO_BUFFER)) == NULL ||
	    (src->pb = avio_alloc_context(buf, SOURCE_IO_BUFFER, 0, src,
		 source_read, NULL, source_seek)) == NULL) {
		av_free(buf);
		snprintf(err, errlen, "cannot open '%s': %s", path,
		    strerror(ENOMEM));
		return AVERROR(ENOMEM);
	}
	/* buf belongs to src->pb now (it may even replace it). */
	if (!probed) {
		source_short_name(format, name, sizeof(name));
		ifmt = av_find_input_format(name);
	} else if ((rc = av_probe_input_buffer2(src->pb, &ifmt, path, NULL, 0,
			0)) < 0) {
		snprintf(err, errlen, "'%s' is not a media file libavformat "
		    "can read: %s", path, av_err2str(rc));
		return rc;
	}
	/*
	 * A still image (png_pipe, jpeg_pipe, image2, ...) is no video to
	 * package: say so, rather than name its demuxer.
	 */
	if (ifmt && (strstr(ifmt->name, "_pipe") != NULL ||
			strcmp(ifmt->name, "image2") == 0)) {
		source_short_name(ifmt->name, name, sizeof(name));
		snprintf(err, errlen, "'%s' is a still image (%s), not a video "
		    "or audio source: nothing to package", path, name);
		return AVERROR(EPERM);
	}
	if (!source_allowed(ifmt, list)) {
		source_short_name(ifmt ? ifmt->name : format, name,
		    sizeof(name));
		snprintf(err, errlen, "container '%s' is not accepted as a "
		    "source: '%s' may name further files to open (playlists, "
		    "concat scripts, image sequences are refused; accepted: "
		    "%s)", name, path, list);
		return AVERROR(EPERM);
	}
	if ((src->fmt = avformat_alloc_context()) == NULL) {
		snprintf(err, errlen, "cannot open '%s': %s", path,
		    strerror(ENOMEM));
		return AVERROR(ENOMEM);
	}
	src->fmt->pb = src->pb;
	src->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	src->fmt->io_open = source_io_open;
	if (cb != NULL)
		src->fmt->interrupt_callback = *cb;
	if ((rc = av_dict_set(&opts, "format_whitelist", ifmt->name, 0)) < 0 ||
	    (rc = av_dict_set(&opts, "protocol_whitelist", "none", 0)) < 0) {
		av_dict_free(&opts);
		snprintf(err, errlen, "cannot open '%s': %s", path,
		    av_err2str(rc));
		return rc;
	}
	/* On failure avformat_open_input frees src->fmt and sets it NULL. */
	rc = avformat_open_input(&src->fmt, path, ifmt, &opts);
	av_dict_free(&opts);
	if (rc < 0 && probed)
		snprintf(err, errlen, "'%s' is not a media file libavformat "
		    "can read: %s", path, av_err2str(rc));
	else if (rc < 0)
		snprintf(err, errlen, "cannot open '%s': %s", path,
		    av_err2str(rc));
	return rc < 0 ? rc : 0;
}

int
ladderd_source_open(struct ladderd_source *src, const char *path,
    const char *format, const AVIOInterruptCB *cb, char *err, size_t errlen)
{
	return source_open(src, path, format, cb, LADDERD_SOURCE_FORMATS, err,
	    errlen);
}

int
ladderd_source_open_subtitles(struct ladderd_source *src, const char *path,
    char *err, size_t errlen)
{
	return source_open(src, path, NULL, NULL,
	    LADDERD_SOURCE_SUBTITLE_FORMATS, err, errlen);
}

void
ladderd_source_close(struct ladderd_source *src)
{
	/* The custom AVIOContext is ours to free, after the demuxer. */
	avformat_close_input(&src->fmt);
	if (src->pb != NULL) {
		av_freep(&src->pb->buffer);
		avio_context_free(&src->pb);
	}
	if (src->fd >= 0) {
		close(src->fd);
		src->fd = -1;
	}
}
