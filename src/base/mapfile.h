/* Read-only memory mapping of a whole file (model weights stay in the page cache, never copied
 * to the heap). An empty file maps to a non-NULL zero-length region. */
#ifndef VEIL_MAPFILE_H
#define VEIL_MAPFILE_H

#include <stddef.h>

typedef struct mapfile {
    const unsigned char *data;
    size_t size;
} mapfile;

/* Returns 0, or -1 with err_msg() naming the path. */
int mapfile_open(mapfile *m, const char *path);
void mapfile_close(mapfile *m);

/* Drops the whole pages inside [p, p + n) of a mapping from this process's resident memory:
 * they stay in the page cache and are read again from there if touched. For data copied
 * elsewhere once (model_pack), so that it does not count twice. */
void mapfile_drop(const void *p, size_t n);

#endif
