/*
 * framering.c - the frame ring of the shared decode (protocol: framering.h).
 *
 * The shared header sits at the start of the mapping; the slots follow,
 * page aligned, once the producer knows the frame geometry. Only this file
 * touches the header's fields, always under its mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/common.h>
#include <libavutil/imgutils.h>
#include <libavutil/version.h>

#include "framering.h"
#include "stage.h"

#define RING_MAGIC 0x4c44524eu /* "LDRN" */
#define RING_VERSION 4
/* Slots the decoder may never take: the copy path always finds one. */
#define RING_RESERVE 1
#define RING_NAME_MAX 72
/* A ring another process created is initialised within this. */
#define RING_INIT_WAIT_MS 5000
/* Readers must attach (or end) within this after the first frame. */
#define RING_ATTACH_WAIT_MS 60000

#if LIBAVUTIL_VERSION_MAJOR >= 58
#define RING_FRAME_DURATION(f) ((f)->duration)
#else
#define RING_FRAME_DURATION(f) ((f)->pkt_duration)
#endif

enum ring_reader_state {
	RING_PENDING = 0,
	RING_ATTACHED = 1,
	RING_GONE = 2,
};

struct ring_reader {
	char name[RING_NAME_MAX];
	int32_t state;
	int32_t pid;
	uint64_t consumed; /* frames released */
};

struct ring_meta {
	int64_t pts;	  /* in tb_num/tb_den */
	int64_t duration; /* same unit, 0 if unknown */
	int32_t slot;	  /* where the frame is */
	int32_t width, height;
	int32_t pad;
	uint64_t plane_off[4]; /* of each plane, within the slot */
};

/*
 * A process's mapping of the whole ring, which its users share: a worker
 * that runs the producer and a reader as two threads (two stages, each
 * with its own copy of this code) maps the slots once, not twice.
 */
struct ring_mapping {
	int32_t pid;
	int32_t refs;	 /* 0: a free entry */
	uint64_t addr;
	uint64_t process; /* ring_process(): a pid reused by a new process
			     does not find an old one's address */
};

/* The shared header: every field under `mu` (magic: atomics). */
struct ring_shared {
	uint32_t magic, version;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* broadcast on every change */
	int32_t ready;	   /* geometry set, mapping sized */
	int32_t eof;	   /* the producer published its last frame */
	int32_t failed;	   /* the producer failed or died */
	int32_t nreaders;
	struct ring_reader readers[FRAMERING_MAX_READERS];
	char producer[RING_NAME_MAX];
	int32_t width, height, format, color_range, colorspace;
	int32_t tb_num, tb_den;
	int32_t linesize[4];
	uint64_t plane_off[4]; /* within a slot */
	uint64_t slot_size;
	uint64_t data_off; /* slot 0, from the start of the mapping */
	uint64_t total_size;
	uint64_t produced; /* frames published */
	struct ring_meta meta[FRAMERING_WINDOW];
	struct ring_mapping maps[FRAMERING_MAX_READERS + 1];
};

/* One process's handle. */
struct framering {
	struct ring_shared *sh;
	size_t mapped;
	int map_entry; /* its entry in sh->maps, or -1 (a mapping of its own) */
	int fd;
	int producer; /* else a reader */
	int idx;      /* the reader's entry */
	uint64_t next; /* the reader's next frame */
	struct framering_hooks hooks;
	/* Producer: references the decoder holds to each slot (under mu). */
	int dec_refs[FRAMERING_SLOTS];
	int64_t copied; /* frames that had to be copied into a slot */
};

static void
ring_lock(struct ring_shared *sh)
{
	/* A holder died: the header is still consistent (every change is
	 * a single store or a counter), carry on. */
	if (pthread_mutex_lock(&sh->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&sh->mu);
}

static void
ring_unlock(struct ring_shared *sh)
{
	pthread_mutex_unlock(&sh->mu);
}

static void
ring_changed(struct ring_shared *sh)
{
	pthread_cond_broadcast(&sh->cv);
}

/* Wait (locked) at most FRAMERING_WAIT_MS; 1 when it timed out. */
static int
ring_wait(struct ring_shared *sh)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += FRAMERING_WAIT_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	rc = pthread_cond_timedwait(&sh->cv, &sh->mu, &ts);
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&sh->mu);
	return rc == ETIMEDOUT;
}

static int
ring_ended(const struct framering *r, const char *name)
{
	return r->hooks.ended && name[0] && r->hooks.ended(r->hooks.arg, name);
}

static int
ring_cancelled(const struct framering *r)
{
	return r->hooks.cancelled && r->hooks.cancelled(r->hooks.arg);
}

static int
ring_find(const struct ring_shared *sh, const char *name)
{
	for (int i = 0; i < sh->nreaders && i < FRAMERING_MAX_READERS; i++)
		if (strncmp(sh->readers[i].name, name, RING_NAME_MAX) == 0)
			return i;
	return -1;
}

/* Map `size` bytes of the ring, replacing the current mapping. */
static int
ring_map(struct framering *r, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
	    0);

	if (p == MAP_FAILED)
		return -errno;
	if (r->sh != NULL)
		munmap(r->sh, r->mapped);
	r->sh = p;
	r->mapped = size;
	return 0;
}

/*
 * Which process this is, beyond its pid: where libc's getpid is mapped,
 * the same for every plugin of a process and, with address space layout
 * randomisation, not the same for the next process to get this pid.
 */
static uint64_t
ring_process(void)
{
	return (uint64_t)(uintptr_t)&getpid;
}

/*
 * Map the whole ring (sh->total_size) in place of the header, or share the
 * mapping another user in this process made (sh->maps).
 */
static int
ring_map_whole(struct framering *r)
{
	struct ring_shared *sh = r->sh;
	size_t size = (size_t)sh->total_size;
	int entry = -1, unused = -1;
	pid_t pid = getpid();
	uint64_t process = ring_process();
	void *p;

	ring_lock(sh);
	for (int i = 0; i < FRAMERING_MAX_READERS + 1; i++) {
		if (sh->maps[i].refs > 0 && sh->maps[i].pid == pid &&
		    sh->maps[i].process == process)
			entry = i;
		else if (sh->maps[i].refs == 0 && unused < 0)
			unused = i;
	}
	if (entry >= 0) {
		sh->maps[entry].refs++;
		p = (void *)(uintptr_t)sh->maps[entry].addr;
	} else if ((p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			r->fd, 0)) == MAP_FAILED) {
		ring_unlock(sh);
		return -errno;
	} else if ((entry = unused) >= 0) {
		sh->maps[entry].pid = pid;
		sh->maps[entry].refs = 1;
		sh->maps[entry].addr = (uint64_t)(uintptr_t)p;
		sh->maps[entry].process = process;
	}
	ring_unlock(sh);
	munmap(r->sh, r->mapped);
	r->sh = p;
	r->mapped = size;
	r->map_entry = entry;
	return 0;
}

/* Unmap r's view of the ring, unless another user here still shares it. */
static void
ring_unmap(struct framering *r)
{
	int last = 1;

	if (r->map_entry >= 0) {
		ring_lock(r->sh);
		last = --r->sh->maps[r->map_entry].refs <= 0;
		ring_unlock(r->sh);
	}
	if (last)
		munmap(r->sh, r->mapped);
}

/* Initialise a ring this process just created (nobody else maps it). */
static int
ring_init(struct framering *r, const struct framering_spec *s)
{
	struct ring_shared *sh;
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	int err;

	if (ftruncate(r->fd, sizeof(*sh)) < 0)
		return -errno;
	if ((err = ring_map(r, sizeof(*sh))) < 0)
		return err;
	sh = r->sh;
	memset(sh, 0, sizeof(*sh));
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&sh->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&sh->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < s->nreaders; i++) {
		strncpy(sh->readers[i].name, s->readers[i], RING_NAME_MAX - 1);
		sh->readers[i].state = RING_PENDING;
	}
	sh->nreaders = s->nreaders;
	strncpy(sh->producer, s->producer ? s->producer : "",
	    RING_NAME_MAX - 1);
	sh->version = RING_VERSION;
	__atomic_store_n(&sh->magic, RING_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Map a ring another process created, once it is initialised. There is
 * no descriptor to wait on: poll, briefly (initialising takes a few
 * microseconds; the bound covers a creator that died doing it).
 */
static int
ring_join(struct framering *r)
{
	const struct timespec step = { 0, 2 * 1000000L };
	struct stat st;
	int err;

	for (int waited = 0;; waited += 2) {
		if (fstat(r->fd, &st) < 0)
			return -errno;
		if ((size_t)st.st_size >= sizeof(struct ring_shared)) {
			if (r->sh == NULL &&
			    (err = ring_map(r, sizeof(struct ring_shared))) < 0)
				return err;
			if (__atomic_load_n(&r->sh->magic, __ATOMIC_ACQUIRE) ==
			    RING_MAGIC)
				break;
		}
		if (waited >= RING_INIT_WAIT_MS)
			return -ETIMEDOUT;
		(void)nanosleep(&step, NULL);
	}
	if (r->sh->version != RING_VERSION)
		return -EPROTO;
	return 0;
}

/* Open the ring of `s`, creating it when this process comes first. */
static int
ring_open(struct framering **ret, const struct framering_spec *s,
    int producer)
{
	struct framering *r;
	int err;

	*ret = NULL;
	if (s->name == NULL || s->nreaders < 1 ||
	    s->nreaders > FRAMERING_MAX_READERS)
		return -E2BIG;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->producer = producer;
	r->idx = -1;
	r->map_entry = -1;
	r->hooks = s->hooks;
	r->fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (r->fd >= 0) {
		err = ring_init(r, s);
	} else if (errno == EEXIST &&
	    (r->fd = shm_open(s->name, O_RDWR | O_CLOEXEC, 0)) >= 0) {
		err = ring_join(r);
	} else {
		err = -errno;
	}
	if (err < 0) {
		if (r->sh)
			munmap(r->sh, r->mapped);
		if (r->fd >= 0)
			close(r->fd);
		free(r);
		return err;
	}
	*ret = r;
	return 0;
}

int
framering_create(struct framering **ret, const struct framering_spec *s)
{
	return ring_open(ret, s, 1);
}

int
framering_attach(struct framering **ret, const struct framering_spec *s,
    const char *reader)
{
	struct framering *r;
	struct ring_shared *sh;
	int err, i;

	if ((err = ring_open(&r, s, 0)) < 0)
		return err;
	sh = r->sh;
	ring_lock(sh);
	i = ring_find(sh, reader);
	/* Late (a frame is out), retried (GONE) or unknown: decode alone. */
	if (i >= 0 && sh->readers[i].state == RING_PENDING &&
	    sh->produced == 0 && !sh->failed && !sh->eof) {
		sh->readers[i].state = RING_ATTACHED;
		sh->readers[i].pid = (int32_t)getpid();
		sh->readers[i].consumed = 0;
		r->idx = i;
		ring_changed(sh);
	}
	ring_unlock(sh);
	if (r->idx < 0) {
		framering_finish(&r, 0);
		return 0;
	}
	*ret = r;
	return 1;
}

/* Pending readers whose unit ended are gone (locked); how many remain. */
static int
ring_pending(struct framering *r, int give_up)
{
	struct ring_shared *sh = r->sh;
	int n = 0;

	for (int i = 0; i < sh->nreaders; i++) {
		if (sh->readers[i].state != RING_PENDING)
			continue;
		if (give_up || ring_ended(r, sh->readers[i].name))
			sh->readers[i].state = RING_GONE;
		else
			n++;
	}
	return n;
}

int
framering_configure(struct framering *r, const AVFrame *f, AVRational tb)
{
	struct ring_shared *sh = r->sh;
	int linesize[4] = { 0 };
	uint8_t *data[4] = { NULL };
	uint64_t data_off, slot, total;
	int err, size;

	if ((err = av_image_fill_linesizes(linesize, f->format,
		 FFALIGN(f->width, 64))) < 0)
		return err;
	/* Offsets only: av_image_fill_pointers does not write through. */
	/* Two rows more than the picture: room for a decoder's over-reads. */
	if ((size = av_image_fill_pointers(data, f->format, f->height + 2,
		 (uint8_t *)sh, linesize)) < 0)
		return size;
	slot = FFALIGN((uint64_t)size, 4096);
	data_off = FFALIGN(sizeof(*sh), 4096);
	total = data_off + slot * FRAMERING_SLOTS;
	if (ftruncate(r->fd, (off_t)total) < 0)
		return AVERROR(errno);
	ring_lock(sh);
	sh->width = f->width;
	sh->height = f->height;
	sh->format = f->format;
	sh->color_range = f->color_range;
	sh->colorspace = f->colorspace;
	sh->tb_num = tb.num;
	sh->tb_den = tb.den;
	for (int i = 0; i < 4; i++) {
		sh->linesize[i] = linesize[i];
		sh->plane_off[i] = data[i] ?
		    (uint64_t)(data[i] - (uint8_t *)sh) : 0;
	}
	sh->slot_size = slot;
	sh->data_off = data_off;
	sh->total_size = total;
	ring_unlock(sh);
	if ((err = ring_map_whole(r)) < 0)
		return AVERROR(-err);
	sh = r->sh;
	ring_lock(sh);
	sh->ready = 1;
	ring_changed(sh);
	/* Every reader attaches, or its unit ends (it is then gone). */
	for (int waited = 0; ring_pending(r, waited >= RING_ATTACH_WAIT_MS);
	     waited += FRAMERING_WAIT_MS) {
		if (ring_cancelled(r)) {
			ring_unlock(sh);
			return AVERROR(ECANCELED);
		}
		(void)ring_wait(sh);
	}
	ring_unlock(sh);
	return 0;
}

/*
 * The first frame readers still need (locked) and how many readers are
 * attached: frames from there to `produced` are theirs.
 */
static uint64_t
ring_oldest(const struct ring_shared *sh, int *ret_attached)
{
	uint64_t min = sh->produced;
	int n = 0;

	for (int i = 0; i < sh->nreaders; i++) {
		if (sh->readers[i].state != RING_ATTACHED)
			continue;
		n++;
		if (sh->readers[i].consumed < min)
			min = sh->readers[i].consumed;
	}
	*ret_attached = n;
	return min;
}

/* Attached readers whose unit ended are gone (locked). */
static void
ring_reap(struct framering *r)
{
	struct ring_shared *sh = r->sh;

	for (int i = 0; i < sh->nreaders; i++)
		if (sh->readers[i].state == RING_ATTACHED &&
		    ring_ended(r, sh->readers[i].name))
			sh->readers[i].state = RING_GONE;
}

/*
 * A slot neither the decoder nor a reader holds (locked), -1 if none; in
 * *ret_free how many such slots there are.
 */
static int
ring_free_slot(const struct framering *r, int *ret_free)
{
	const struct ring_shared *sh = r->sh;
	int used[FRAMERING_SLOTS] = { 0 }, attached, slot = -1, nfree = 0;

	for (uint64_t k = ring_oldest(sh, &attached); k < sh->produced; k++)
		used[sh->meta[k % FRAMERING_WINDOW].slot] = 1;
	for (int s = 0; s < FRAMERING_SLOTS; s++) {
		if (used[s] || r->dec_refs[s] > 0)
			continue;
		nfree++;
		if (slot < 0)
			slot = s;
	}
	*ret_free = nfree;
	return slot;
}

static uint8_t *
ring_slot(const struct framering *r, int s)
{
	return (uint8_t *)r->sh + r->sh->data_off + (uint64_t)s *
	    r->sh->slot_size;
}

/* Which slot `p` points into, or -1 (not the ring's memory). */
static int
ring_slot_of(const struct framering *r, const uint8_t *p)
{
	const uint8_t *base = ring_slot(r, 0);

	if (r->sh == NULL || !r->sh->ready || p < base ||
	    p >= base + FRAMERING_SLOTS * r->sh->slot_size)
		return -1;
	return (int)((uint64_t)(p - base) / r->sh->slot_size);
}

/* Point f's planes at slot s (memory of the ring, laid out as configured). */
static void
ring_layout(const struct framering *r, int s, AVFrame *f)
{
	const struct ring_shared *sh = r->sh;

	for (int i = 0; i < 4; i++) {
		f->data[i] = sh->linesize[i] ? ring_slot(r, s) +
		    sh->plane_off[i] : NULL;
		f->linesize[i] = sh->linesize[i];
	}
}

/* The decoder let go of a slot's buffer (any of its threads). */
static void
ring_buffer_free(void *opaque, uint8_t *data)
{
	struct framering *r = opaque;
	int s = ring_slot_of(r, data);

	ring_lock(r->sh);
	if (s >= 0)
		r->dec_refs[s]--;
	ring_changed(r->sh);
	ring_unlock(r->sh);
}

int
framering_get_buffer(struct framering *r, AVFrame *f)
{
	struct ring_shared *sh = r->sh;
	int s = -1, nfree;

	/* Another geometry than configured: the decoder's own memory. */
	if (!sh->ready || f->format != sh->format || f->width > sh->width ||
	    f->height > sh->height)
		return 0;
	ring_lock(sh);
	if ((s = ring_free_slot(r, &nfree)) >= 0 && nfree > RING_RESERVE)
		r->dec_refs[s]++;
	else
		s = -1;
	ring_unlock(sh);
	if (s < 0)
		return 0;
	ring_layout(r, s, f);
	f->buf[0] = av_buffer_create(f->data[0], (size_t)sh->slot_size -
	    sh->plane_off[0], ring_buffer_free, r, 0);
	if (f->buf[0] == NULL) {
		ring_buffer_free(r, f->data[0]);
		memset(f->data, 0, sizeof(f->data));
		return AVERROR(ENOMEM);
	}
	f->extended_data = f->data;
	return 1;
}

int
framering_publish(struct framering *r, const AVFrame *f)
{
	struct ring_shared *sh = r->sh;
	int s = ring_slot_of(r, f->data[0]), attached, nfree, rc = 1;
	struct ring_meta *m;
	AVFrame dst = { 0 };

	if (f->format != sh->format || f->width > sh->width ||
	    f->height > sh->height)
		return AVERROR(EINVAL);
	ring_lock(sh);
	/* Room in the window, and a slot unless the frame is in one. */
	for (;;) {
		uint64_t oldest = ring_oldest(sh, &attached);

		if (attached == 0) {
			rc = 0;
			break;
		}
		if (sh->produced - oldest < FRAMERING_WINDOW &&
		    (s >= 0 || ring_free_slot(r, &nfree) >= 0))
			break;
		if (ring_cancelled(r)) {
			rc = AVERROR(ECANCELED);
			break;
		}
		if (ring_wait(sh))
			ring_reap(r);
	}
	if (rc == 1 && s < 0) {
		/* Kept from the decoder while the copy fills it. */
		s = ring_free_slot(r, &nfree);
		r->dec_refs[s]++;
	}
	ring_unlock(sh);
	if (rc != 1)
		return rc;
	m = &sh->meta[sh->produced % FRAMERING_WINDOW];
	if (ring_slot_of(r, f->data[0]) != s) {
		/* Not decoded into the ring: copy (no reader is in slot s). */
		ring_layout(r, s, &dst);
		av_image_copy(dst.data, dst.linesize, (const uint8_t **)f->data,
		    f->linesize, f->format, f->width, f->height);
		r->copied++;
		for (int i = 0; i < 4; i++)
			m->plane_off[i] = sh->plane_off[i];
	} else {
		/* In place; the decoder may crop (move the planes' start). */
		for (int i = 0; i < 4; i++)
			m->plane_off[i] = f->data[i] ?
			    (uint64_t)(f->data[i] - ring_slot(r, s)) : 0;
		s = -1 - s; /* no copy reference to drop */
	}
	ring_lock(sh);
	if (s >= 0) {
		r->dec_refs[s]--;
	} else {
		s = -1 - s;
	}
	m->slot = s;
	m->width = f->width;
	m->height = f->height;
	m->pts = f->best_effort_timestamp;
	m->duration = RING_FRAME_DURATION(f);
	sh->produced++;
	ring_changed(sh);
	ring_unlock(sh);
	return 1;
}

int64_t
framering_copied(const struct framering *r)
{
	return r->copied;
}

int
framering_read(struct framering *r, AVFrame *f)
{
	struct ring_shared *sh = r->sh;
	const struct ring_meta *m;
	uint64_t k = r->next;
	int rc, err;

	ring_lock(sh);
	for (;;) {
		if (sh->ready && sh->produced > k) {
			rc = 1;
			break;
		}
		if (sh->failed) {
			rc = AVERROR(EPIPE);
			break;
		}
		if (sh->eof) {
			rc = 0;
			break;
		}
		if (ring_cancelled(r)) {
			rc = AVERROR(ECANCELED);
			break;
		}
		/* A producer that ended without "end of stream" died. */
		if (ring_wait(sh) && !sh->eof && ring_ended(r, sh->producer))
			sh->failed = 1;
	}
	ring_unlock(sh);
	if (rc != 1)
		return rc;
	if (r->mapped < sh->total_size && (err = ring_map_whole(r)) < 0)
		return AVERROR(-err);
	sh = r->sh;
	m = &sh->meta[k % FRAMERING_WINDOW];
	f->width = m->width;
	f->height = m->height;
	f->format = sh->format;
	f->color_range = sh->color_range;
	f->colorspace = sh->colorspace;
	for (int i = 0; i < 4; i++) {
		f->data[i] = sh->linesize[i] ? ring_slot(r, m->slot) +
		    m->plane_off[i] : NULL;
		f->linesize[i] = sh->linesize[i];
	}
	f->best_effort_timestamp = m->pts;
	RING_FRAME_DURATION(f) = m->duration;
	return 1;
}

void
framering_release(struct framering *r, AVFrame *f)
{
	struct ring_shared *sh = r->sh;

	memset(f->data, 0, sizeof(f->data));
	memset(f->linesize, 0, sizeof(f->linesize));
	ring_lock(sh);
	sh->readers[r->idx].consumed = ++r->next;
	ring_changed(sh);
	ring_unlock(sh);
}

void
framering_end(struct framering *r, int ok)
{
	if (r == NULL || (!r->producer && r->idx < 0))
		return;
	ring_lock(r->sh);
	if (!r->producer)
		r->sh->readers[r->idx].state = RING_GONE;
	else if (ok)
		r->sh->eof = 1;
	else if (!r->sh->eof)
		r->sh->failed = 1;
	ring_changed(r->sh);
	ring_unlock(r->sh);
}

void
framering_finish(struct framering **rp, int ok)
{
	struct framering *r = *rp;

	if (r == NULL)
		return;
	framering_end(r, ok);
	ring_unmap(r);
	close(r->fd);
	free(r);
	*rp = NULL;
}

/* A unit ended when the host marked it so (stage.h). */
static int
ring_hook_ended(void *arg, const char *name)
{
	struct ladderd_call *call = arg;
	char path[4096];

	if (call->path(call, LADDERD_PATH_RUNG_ENDED, name, path,
		sizeof(path)) < 0)
		return 0;
	return access(path, F_OK) == 0;
}

static int
ring_hook_cancelled(void *arg)
{
	struct ladderd_call *call = arg;

	return call->cancelled(call);
}

int
framering_spec_load(struct framering_spec *s, struct ladderd_call *call,
    const char *names[FRAMERING_MAX_READERS])
{
	const cJSON *it;
	int n = 0;

	memset(s, 0, sizeof(*s));
	s->name = ladderd_ctx_str(call->ctx, "shared_decode.ring", NULL);
	s->producer = ladderd_ctx_str(call->ctx, "shared_decode.producer", "");
	cJSON_ArrayForEach(it, ladderd_ctx_get(call->ctx,
				   "shared_decode.names"))
		if (cJSON_IsString(it) && n < FRAMERING_MAX_READERS)
			names[n++] = it->valuestring;
	if (s->name == NULL || n == 0)
		return -ENOENT;
	s->readers = names;
	s->nreaders = n;
	s->hooks.ended = ring_hook_ended;
	s->hooks.cancelled = ring_hook_cancelled;
	s->hooks.arg = call;
	return 0;
}
