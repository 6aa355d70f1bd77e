/*
 * LD_PRELOAD shim for tests/it/remote: damages one write on its way to
 * the disk, so the binary's own checks meet a file that does not hold
 * what it wrote.
 *
 *   MIGSNAP_DAMAGE_WRITE_TO=TEXT  the first pwrite (pwrite64) to a file
 *                                 whose path contains TEXT reaches the
 *                                 disk with the byte in the middle of
 *                                 its buffer flipped; it reports success
 *
 * Without the variable every call goes through unchanged. Build:
 *   cc -shared -fPIC -o write_shim.so write_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int damaged;

static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);

/* Whether descriptor `fd` names a file whose path contains the text. */
static int targeted(int fd) {
    const char *text = getenv("MIGSNAP_DAMAGE_WRITE_TO");
    if (!text || !*text || damaged)
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = '\0';
    return strstr(path, text) != NULL;
}

static ssize_t damaging_write(int fd, const void *buf, size_t count, off_t offset) {
    if (!real_pwrite64)
        real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    /* Not atomic: a race can only damage a second write, which the
     * binary's checks must catch as well. */
    if (count == 0 || !targeted(fd))
        return real_pwrite64(fd, buf, count, offset);
    damaged = 1;
    unsigned char *copy = malloc(count);
    if (!copy)
        return real_pwrite64(fd, buf, count, offset);
    memcpy(copy, buf, count);
    copy[count / 2] ^= 0x5a;
    ssize_t written = real_pwrite64(fd, copy, count, offset);
    free(copy);
    return written;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    return damaging_write(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    return damaging_write(fd, buf, count, offset);
}
