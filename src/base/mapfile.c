/* mmap of a whole read-only file; see mapfile.h. */
#include "base/mapfile.h"

#include "base/err.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char empty_region[1];

int mapfile_open(mapfile *m, const char *path) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    m->data = NULL;
    m->size = 0;
    if (fd < 0) return err_errno("%s", path);
    if (fstat(fd, &st) != 0) {
        err_errno("%s: stat", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set("%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size == 0) {
        m->data = empty_region;
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            err_errno("%s: mmap", path);
            goto fail;
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return 0;
fail:
    close(fd);
    return -1;
}

void mapfile_close(mapfile *m) {
    if (m->data && m->size) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

void mapfile_drop(const void *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    /* only advice: if it fails, the pages just stay resident */
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
