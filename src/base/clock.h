/* The monotonic clock in seconds: for durations (timeouts, rates, profiles), never dates. */
#ifndef VEIL_CLOCK_H
#define VEIL_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC), with nanosecond resolution. */
double clock_now(void);

#endif
