/*
 * framering.h - the frame ring of the shared decode: one producer (stage
 * "decode") hands every decoded picture to N readers (stage "transcode",
 * one per rung), through POSIX shared memory. Producer and readers may be
 * in different processes or threads of one (the daemon runs the producer
 * in the top rung's worker); one process maps the slots once, whichever
 * of its users comes first, and the last to finish unmaps them.
 * Compiled into those two stages only; the daemon knows nothing of it.
 *
 * The protocol, in one place:
 *   - The ring has a name ("/ladderd-..."), a fixed list of reader names
 *     and the name of the producer's unit, all from the task's plan
 *     (ctx.shared_decode, written by hls_header). Whichever side opens it
 *     first creates it (O_EXCL; the others wait for it to be initialised),
 *     so producer and readers may start in any order.
 *   - A reader attaches under its name (framering_attach) while its entry
 *     is PENDING and no frame was published; otherwise it is told to
 *     decode on its own. A producer configures the ring for its first
 *     frame's geometry (framering_configure), which sizes the mapping and
 *     waits until every reader has attached or ended.
 *   - The slots are a pool. The decoder decodes straight into free slots
 *     (framering_get_buffer as its get_buffer2; its references keep a
 *     slot, which may be a reference picture, until it lets go), and the
 *     producer publishes each output frame where it is, with its
 *     timestamps and crop (framering_publish). A frame not in a slot
 *     (after filters, or when the decoder holds all but RING_RESERVE
 *     slots) is copied into one. A slot is free when neither the decoder
 *     nor a reader (a published frame not yet released by every attached
 *     reader) holds it. The producer waits while the slowest attached
 *     reader is FRAMERING_WINDOW frames behind, and stops (publish returns
 *     0) when no reader is left.
 *   - A reader takes the next frame (framering_read: its planes point into
 *     the slot, no copy), uses it, and gives it back (framering_release).
 *   - framering_finish ends either side: the producer's says "end of
 *     stream" or "failed", a reader's leaves (the producer stops waiting
 *     for it). Both unmap.
 *   - A peer that dies never says so: every wait is a timed wait
 *     (FRAMERING_WAIT_MS) after which the caller's hooks are asked whether
 *     a peer's unit has ended (the host marks a unit's state folder when
 *     its process ended, stage.h) and whether the task was cancelled. A
 *     reader that ended is GONE; a producer that ended without "end of
 *     stream" FAILED the ring.
 * One robust, process-shared mutex and condition variable guard the
 * header. Frames keep the producer's pixel format and size; each reader
 * scales for its own rung. Removing the name from /dev/shm is the host's
 * job (ctx.cleanup.shm lists it): a ring outlives a crashed task until then.
 */
#ifndef LADDERD_FRAMERING_H
#define LADDERD_FRAMERING_H

#include <stdint.h>

#include <libavutil/frame.h>
#include <libavutil/rational.h>

#define FRAMERING_MAX_READERS 16
#define FRAMERING_SLOTS 10 /* frame buffers in the shared memory */
#define FRAMERING_WINDOW 3 /* published frames a reader may lag behind */
#define FRAMERING_WAIT_MS 200

struct framering;

/* What a ring's user tells it about its peers (all may be NULL). */
struct framering_hooks {
	/* Nonzero when unit `name` (a reader or the producer) has ended. */
	int (*ended)(void *arg, const char *name);
	/* Nonzero when the task is being stopped. */
	int (*cancelled)(void *arg);
	void *arg;
};

/* Which ring, and who takes part in it. */
struct framering_spec {
	const char *name;	     /* "/ladderd-..." */
	const char *producer;	     /* the producer's unit name */
	const char *const *readers;  /* the readers' unit names */
	int nreaders;		     /* 1..FRAMERING_MAX_READERS */
	struct framering_hooks hooks;
};

/*
 * Producer: open (or create) the ring. Returns 0 and *ret, or a negative
 * errno (-E2BIG: too many readers, -EPROTO: not a ring of this version).
 */
int framering_create(struct framering **ret, const struct framering_spec *s);

/*
 * Producer: size the slots for frames up to f's size and format (a
 * decoder's aligned size when it decodes into them; time base `tb`),
 * announce it, and wait until every reader has attached or ended (or waited the
 * attach limit). Returns 0, -ECANCELED, or a negative errno.
 */
int framering_configure(struct framering *r, const AVFrame *f, AVRational tb);

/*
 * Producer, as the decoder's get_buffer2: hand the decoder a free slot to
 * decode into (f->buf[0] references it; the slot stays the decoder's until
 * every reference is gone). Returns 1, 0 when no slot can be spared or f
 * does not fit the configured geometry (use the decoder's own memory),
 * or AVERROR(ENOMEM). Safe from the decoder's threads.
 */
int framering_get_buffer(struct framering *r, AVFrame *f);

/*
 * Producer: publish frame f (its timestamps: best_effort_timestamp and
 * duration). A frame decoded into a slot is published where it is; any
 * other is copied into a free slot. Waits while the slowest reader is
 * FRAMERING_WINDOW frames behind. Returns 1, 0 when every reader is gone
 * (nothing more to do), AVERROR(ECANCELED), AVERROR(EINVAL) for a frame
 * that does not fit the configured geometry.
 */
int framering_publish(struct framering *r, const AVFrame *f);

/* Producer: how many frames publish had to copy. */
int64_t framering_copied(const struct framering *r);

/*
 * Reader: open (or create) the ring and attach as `reader`. Returns 1
 * attached (*ret), 0 not attached (decode on your own), negative errno.
 */
int framering_attach(struct framering **ret, const struct framering_spec *s,
    const char *reader);

/*
 * Reader: the next frame in `f` (planes point into the ring: never free or
 * write them; best_effort_timestamp in the stream's time base, duration).
 * Returns 1, 0 at the end of the stream, -EPIPE when the producer failed
 * or died, -ECANCELED.
 */
int framering_read(struct framering *r, AVFrame *f);

/* Reader: give back the frame read last (clears f's plane pointers). */
void framering_release(struct framering *r, AVFrame *f);

/*
 * Either side: say it is done (NULL-safe). A producer with ok != 0 marks
 * the end of the stream, else the ring FAILED (unless it ended); a reader
 * is marked GONE. The mapping stays: a producer ends before its decoder
 * lets go of the slots, and finishes after.
 */
void framering_end(struct framering *r, int ok);

/* Either side: framering_end, then unmap and free the handle (NULL-safe). */
void framering_finish(struct framering **r, int ok);

struct ladderd_call;

/*
 * The ring of this task's plan (ctx.shared_decode: ring, producer, names),
 * with hooks that ask the host (call) whether a peer's unit ended and
 * whether the task is cancelled. `names` is storage for the reader names
 * (borrowed from the context: valid while the context is). Returns 0, or
 * -ENOENT when the plan has no ring.
 */
int framering_spec_load(struct framering_spec *s, struct ladderd_call *call,
    const char *names[FRAMERING_MAX_READERS]);

#endif /* LADDERD_FRAMERING_H */
