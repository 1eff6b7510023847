/*
 * clock.h - the daemon's two clocks, in whole units: the monotonic clock
 * for intervals, deadlines and rate limits (never jumps), and the wall
 * clock for timestamps that leave the process (events, status files).
 * Header-only, so every program and test that needs a clock has it
 * without one more object to link.
 */
#ifndef LADDERD_CLOCK_H
#define LADDERD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds on CLOCK_MONOTONIC. */
static inline uint64_t
ladderd_clock_mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds on CLOCK_MONOTONIC. */
static inline uint64_t
ladderd_clock_mono_ms(void)
{
	return ladderd_clock_mono_us() / 1000u;
}

/* Milliseconds since the epoch (CLOCK_REALTIME). */
static inline uint64_t
ladderd_clock_wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
