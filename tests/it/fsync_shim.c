/*
 * LD_PRELOAD shim for tests/it/fsync_faults.rs: makes the real fsync,
 * fdatasync and sync_file_range calls of a process fail with EIO, so that
 * the binary's own error paths (Rust's File::sync_all, SQLite's unix VFS)
 * meet a real failed call. Every call counts, in order, from 0:
 *
 *   MIGSNAP_FAIL_FSYNC_AFTER=N  calls 0..N go through; every later call
 *                               fails with -1/EIO without reaching the disk
 *   MIGSNAP_FAIL_FSYNC_ONLY=N   only call N fails; the others go through
 *   MIGSNAP_COUNT_FSYNC=FILE    appends one line per call to FILE:
 *                               "<index> <function> <ok|FAIL> <caller> <kind> <path>"
 *                               where caller is the return address as an
 *                               offset into the object that made the call
 *                               (for addr2line), kind is dir or file,
 *                               and path is what the descriptor names
 *                               (/proc/self/fd).
 *
 * Without these variables every call goes through. Build:
 *   cc -shared -fPIC -o fsync_shim.so fsync_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static long calls;

static long env_long(const char *name) {
    const char *value = getenv(name);
    return value && *value ? atol(value) : -1;
}

/* Decides whether call `index` fails. */
static int should_fail(long index) {
    long after = env_long("MIGSNAP_FAIL_FSYNC_AFTER");
    long only = env_long("MIGSNAP_FAIL_FSYNC_ONLY");
    return (after >= 0 && index >= after) || (only >= 0 && index == only);
}

static void record(long index, const char *function, int fd, int failed, void *caller) {
    const char *log = getenv("MIGSNAP_COUNT_FSYNC");
    if (!log || !*log)
        return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n < 0 ? 0 : n] = '\0';
    struct stat st;
    const char *kind = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) ? "dir" : "file";
    Dl_info info;
    unsigned long offset = (unsigned long)caller;
    if (dladdr(caller, &info) && info.dli_fbase)
        offset -= (unsigned long)info.dli_fbase;
    char line[4300];
    int len = snprintf(line, sizeof line, "%ld %s %s 0x%lx %s %s\n", index, function,
                       failed ? "FAIL" : "ok", offset, kind, path);
    int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out >= 0) {
        /* One write with O_APPEND: lines of concurrent calls do not mix. */
        (void)!write(out, line, (size_t)len);
        close(out);
    }
}

/* Counts the call, logs it, and says whether it must fail. */
static int intercept(const char *function, int fd, void *caller) {
    long index = __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST);
    int failed = should_fail(index);
    int saved = errno;
    record(index, function, fd, failed, caller);
    errno = saved;
    return failed;
}

int fsync(int fd) {
    if (intercept("fsync", fd, __builtin_return_address(0))) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    if (intercept("fdatasync", fd, __builtin_return_address(0))) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    if (intercept("sync_file_range", fd, __builtin_return_address(0))) {
        errno = EIO;
        return -1;
    }
    int (*real)(int, off_t, off_t, unsigned int) =
        (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    return real(fd, offset, nbytes, flags);
}
