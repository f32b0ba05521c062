/* The event loop (see loop.h). */
#include "net/loop.h"

#include "base/err.h"

#include <event2/event.h>
#include <event2/thread.h>

struct event_base *loop_new(void) {
    struct event_base *b;
    if (evthread_use_pthreads() != 0) {
        err_set("libevent: no pthreads support");
        return NULL;
    }
    if (!(b = event_base_new())) err_set("libevent: cannot make an event loop");
    return b;
}
