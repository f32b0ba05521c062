/* Growable buffer: appends of any size keep the bytes and a trailing NUL; take hands over. */
#include "test.h"

#include "base/buf.h"

#include <stdlib.h>

TEST(buf_append_printf_take) {
    buf b = {0};
    size_t len = 0;
    buf_puts(&b, "ab");
    buf_append(&b, "\0c", 2);
    for (int i = 0; i < 100; i++) buf_printf(&b, "%03d", i); /* grows several times */
    buf_printf(&b, "%s", "");
    CHECK_EQ_INT(b.len, 4 + 300);
    CHECK(memcmp(b.data, "ab\0c000001", 10) == 0);
    CHECK(b.data[b.len] == 0);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    buf_printf(&b, "%s!", big); /* longer than the stack scratch */
    CHECK_EQ_INT(b.len, 304 + 1000);
    CHECK(b.data[b.len - 1] == '!' && b.data[b.len] == 0);
    CHECK(!buf_failed(&b));
    char *s = buf_take(&b, &len);
    CHECK_EQ_INT(len, 1304);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
    s = buf_take(&b, &len); /* empty: a valid empty string */
    CHECK(s && s[0] == 0 && len == 0);
    free(s);
    buf_puts(&b, "x");
    buf_clear(&b);
    CHECK(b.len == 0 && b.data[0] == 0);
    buf_free(&b);
}
