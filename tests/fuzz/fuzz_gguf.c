/* libFuzzer target: the GGUF reader must accept or reject any byte string without a crash,
 * a leak or a read outside the buffer; when it accepts, every accessor must be safe too. */
#include "model/gguf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* copy so that reads past `size` hit ASan's redzone */
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    gguf *g = gguf_open_buffer(copy, size, "fuzz");
    if (g) {
        volatile uint64_t sink = 0;
        for (size_t i = 0; i < gguf_n_kv(g); i++) {
            const gguf_kv *kv = gguf_kv_at(g, i);
            if (kv->val.type == GGUF_ARRAY && kv->val.v.arr.raw)
                for (uint64_t j = 0; j < kv->val.v.arr.n; j++)
                    sink += (uint64_t)gguf_arr_int(&kv->val, j);
        }
        for (size_t i = 0; i < gguf_n_tensors(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            const unsigned char *p = t->data;
            if (t->nbytes) sink += p[0] + p[t->nbytes - 1];
        }
        (void)sink;
        gguf_close(g);
    }
    free(copy);
    return 0;
}
