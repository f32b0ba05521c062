/* The event loop every veil daemon runs on: a libevent base with pthreads locking turned on
 * first, because the scheduler's engine thread wakes the loop with event_active. */
#ifndef VEIL_LOOP_H
#define VEIL_LOOP_H

struct event_base;

/* NULL with err_msg(). Free with event_base_free. */
struct event_base *loop_new(void);

#endif
