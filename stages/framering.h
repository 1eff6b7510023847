/*
 * framering.h - the shared decode: one decoder process, N rung processes
 * reading the same decoded frames from a ring in POSIX shared memory.
 *
 * Who does what:
 *   - the job process (daemon/chord.c) creates the ring with the names of
 *     the rungs that will read it (framering_create), starts the decoder
 *     (stage "decode") and the rungs together, marks a rung GONE when its
 *     process ends (so the decoder never waits for a dead reader) and the
 *     ring FAILED when the decoder dies, and unlinks it after the join;
 *   - the decoder sets the frame geometry, sizes the mapping, then writes
 *     frames into FRAMERING_SLOTS slots, waiting while the slowest
 *     attached reader is a whole ring behind;
 *   - a rung (stage "transcode") attaches under its name if its entry is
 *     still PENDING (a retried rung finds it GONE and decodes on its own),
 *     reads each frame in place (no copy: swscale reads the slot) and
 *     releases it.
 * One robust, process-shared mutex and condition variable guard the
 * header; every wait is a timed wait (FRAMERING_WAIT_MS) so callers can
 * check for cancellation and dead peers. Frames keep the decoder's pixel
 * format and size; each reader scales for its own rung.
 */
#ifndef LADDERD_FRAMERING_H
#define LADDERD_FRAMERING_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FRAMERING_MAGIC 0x4c44524eu /* "LDRN" */
#define FRAMERING_VERSION 1
#define FRAMERING_MAX_READERS 16
#define FRAMERING_SLOTS 8
#define FRAMERING_WAIT_MS 200

enum framering_state {
	FRAMERING_PENDING = 0,
	FRAMERING_ATTACHED = 1,
	FRAMERING_GONE = 2,
};

struct framering_reader {
	char name[72];
	int32_t state;
	int32_t pid;
	uint64_t consumed; /* frames released */
};

struct framering_meta {
	int64_t pts;	  /* in tb_num/tb_den */
	int64_t duration; /* same unit, 0 if unknown */
};

struct framering {
	uint32_t magic, version;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* broadcast on every change */
	int32_t ready;	   /* geometry set, mapping sized */
	int32_t eof;	   /* the decoder wrote its last frame */
	int32_t failed;	   /* the decoder failed or died */
	int32_t nreaders;
	struct framering_reader readers[FRAMERING_MAX_READERS];
	/* Set by the decoder before `ready`. */
	int32_t width, height, format, color_range, colorspace;
	int32_t tb_num, tb_den;
	int32_t linesize[4];
	uint64_t plane_off[4]; /* within a slot */
	uint64_t slot_size;
	uint64_t data_off; /* slot 0, from the start of the mapping */
	uint64_t total_size;
	uint64_t produced; /* frames written */
	struct framering_meta meta[FRAMERING_SLOTS];
};

/* Lock, making the state consistent again if a holder died. */
static inline void
framering_lock(struct framering *r)
{
	if (pthread_mutex_lock(&r->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&r->mu);
}

static inline void
framering_unlock(struct framering *r)
{
	pthread_mutex_unlock(&r->mu);
}

/* Wait on the ring's condition at most FRAMERING_WAIT_MS (locked). */
static inline void
framering_wait(struct framering *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += FRAMERING_WAIT_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == EOWNERDEAD)
		pthread_mutex_consistent(&r->mu);
}

static inline void
framering_broadcast(struct framering *r)
{
	pthread_cond_broadcast(&r->cv);
}

/* Map `size` bytes of an open shm descriptor; NULL on error. */
static inline struct framering *
framering_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : (struct framering *)p;
}

/*
 * Create the ring `name` ("/ladderd-...") for the readers `names`. Returns
 * the mapped header (unmap with munmap(r, sizeof(*r))) or NULL with errno.
 */
static inline struct framering *
framering_create(const char *name, const char *const *names, int n)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	struct framering *r;
	int fd;

	if (n > FRAMERING_MAX_READERS) {
		errno = E2BIG;
		return NULL;
	}
	(void)shm_unlink(name); /* a leftover of a crashed job */
	if ((fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		 0600)) < 0)
		return NULL;
	if (ftruncate(fd, sizeof(*r)) < 0 ||
	    (r = framering_map(fd, sizeof(*r))) == NULL) {
		int e = errno;

		close(fd);
		(void)shm_unlink(name);
		errno = e;
		return NULL;
	}
	close(fd);
	memset(r, 0, sizeof(*r));
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&r->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < n; i++) {
		strncpy(r->readers[i].name, names[i],
		    sizeof(r->readers[i].name) - 1);
		r->readers[i].state = FRAMERING_PENDING;
	}
	r->nreaders = n;
	r->version = FRAMERING_VERSION;
	__atomic_store_n(&r->magic, FRAMERING_MAGIC, __ATOMIC_RELEASE);
	return r;
}

/*
 * Open an existing ring; maps the header only (*ret_size = its size).
 * NULL with errno when it does not exist or is not a ring.
 */
static inline struct framering *
framering_open(const char *name, int *ret_fd, size_t *ret_size)
{
	struct framering *r;
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);

	if (fd < 0)
		return NULL;
	if ((r = framering_map(fd, sizeof(*r))) == NULL) {
		close(fd);
		return NULL;
	}
	if (__atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != FRAMERING_MAGIC ||
	    r->version != FRAMERING_VERSION) {
		munmap(r, sizeof(*r));
		close(fd);
		errno = EPROTO;
		return NULL;
	}
	*ret_fd = fd;
	*ret_size = sizeof(*r);
	return r;
}

/* Remap an open ring to its full size once `ready`; NULL on error. */
static inline struct framering *
framering_remap(struct framering *r, int fd, size_t *size)
{
	size_t want = (size_t)r->total_size;
	struct framering *n;

	if (want <= *size)
		return r;
	if ((n = framering_map(fd, want)) == NULL)
		return NULL;
	munmap(r, *size);
	*size = want;
	return n;
}

static inline int
framering_find(struct framering *r, const char *name)
{
	for (int i = 0; i < r->nreaders && i < FRAMERING_MAX_READERS; i++)
		if (strncmp(r->readers[i].name, name,
			sizeof(r->readers[i].name)) == 0)
			return i;
	return -1;
}

/* Mark reader `name` gone (its process ended); the decoder stops waiting. */
static inline void
framering_mark_gone(struct framering *r, const char *name)
{
	int i;

	framering_lock(r);
	if ((i = framering_find(r, name)) >= 0)
		r->readers[i].state = FRAMERING_GONE;
	framering_broadcast(r);
	framering_unlock(r);
}

/* Mark the ring failed (the decoder ended without eof). */
static inline void
framering_mark_failed(struct framering *r)
{
	framering_lock(r);
	if (!r->eof)
		r->failed = 1;
	framering_broadcast(r);
	framering_unlock(r);
}

/* Frames the slowest attached reader still has to release (locked). */
static inline uint64_t
framering_backlog(const struct framering *r)
{
	uint64_t min = r->produced;

	for (int i = 0; i < r->nreaders; i++)
		if (r->readers[i].state == FRAMERING_ATTACHED &&
		    r->readers[i].consumed < min)
			min = r->readers[i].consumed;
	return r->produced - min;
}

/* Number of readers still PENDING (locked). */
static inline int
framering_pending(const struct framering *r)
{
	int n = 0;

	for (int i = 0; i < r->nreaders; i++)
		n += r->readers[i].state == FRAMERING_PENDING;
	return n;
}

/* The bytes of slot `k` (frame number k modulo the slot count). */
static inline uint8_t *
framering_slot(struct framering *r, uint64_t k)
{
	return (uint8_t *)r + r->data_off + (k % FRAMERING_SLOTS) * r->slot_size;
}

#endif /* LADDERD_FRAMERING_H */
