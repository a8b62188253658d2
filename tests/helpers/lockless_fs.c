/* lockless_fs: a test-only FUSE file system that mirrors a folder and refuses every file lock.
 *
 * It stands in for the shared file systems on which HDF5's and xsweep's locks fail: NFS whose
 * lock daemon is unreachable (flock and fcntl locks fail with ENOLCK), Lustre mounted without
 * -o flock (ENOSYS), and file systems that answer EOPNOTSUPP. The kernel here has no NFS client
 * and no Lustre, so the tests mount this instead (tests/helpers/shared_fs.py builds and mounts
 * it). Everything else passes through to the mirrored folder.
 *
 * Usage: lockless_fs ERRNO SOURCE MOUNTPOINT [FUSE options...]
 *   ERRNO: ENOLCK, ENOSYS or EOPNOTSUPP: what every flock and fcntl lock request returns.
 *   Run it with -f (foreground) and end it with fusermount3 -u MOUNTPOINT (or SIGTERM).
 *
 * Build: cc -O1 -Wall lockless_fs.c $(pkg-config --cflags --libs fuse3) -o lockless_fs
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

static char source[PATH_MAX];
static int refusal = ENOLCK; /* what every lock request gets */

/* The real path under SOURCE of a path inside the mount. */
static int real(char *out, const char *path)
{
    int n = snprintf(out, PATH_MAX, "%s%s", source, path);
    return (n < 0 || n >= PATH_MAX) ? -ENAMETOOLONG : 0;
}

#define REAL(var, path)                                                                        \
    char var[PATH_MAX];                                                                        \
    do {                                                                                       \
        int e_ = real(var, path);                                                              \
        if (e_)                                                                                \
            return e_;                                                                         \
    } while (0)

static int ret(int r) { return r < 0 ? -errno : r; }

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;           /* st_ino of the mirrored files: inode checks must hold */
    cfg->entry_timeout = 0;     /* renames by other processes are seen at once */
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    return NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (fi)
        return ret(fstat((int)fi->fh, st));
    REAL(p, path);
    return ret(lstat(p, st));
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
    REAL(p, path);
    ssize_t n = readlink(p, buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off, (void)fi, (void)flags;
    REAL(p, path);
    DIR *d = opendir(p);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st = {.st_ino = e->d_ino, .st_mode = (mode_t)e->d_type << 12};
        if (fill(buf, e->d_name, &st, 0, 0))
            break;
    }
    closedir(d);
    return 0;
}

static int fs_mkdir(const char *path, mode_t mode) { REAL(p, path); return ret(mkdir(p, mode)); }
static int fs_unlink(const char *path) { REAL(p, path); return ret(unlink(p)); }
static int fs_rmdir(const char *path) { REAL(p, path); return ret(rmdir(p)); }

static int fs_symlink(const char *target, const char *path)
{
    REAL(p, path);
    return ret(symlink(target, p));
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
    REAL(a, from);
    REAL(b, to);
    return ret(renameat2(AT_FDCWD, a, AT_FDCWD, b, flags));
}

static int fs_link(const char *from, const char *to)
{
    REAL(a, from);
    REAL(b, to);
    return ret(link(a, b));
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (fi)
        return ret(fchmod((int)fi->fh, mode));
    REAL(p, path);
    return ret(chmod(p, mode));
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    if (fi)
        return ret(fchown((int)fi->fh, uid, gid));
    REAL(p, path);
    return ret(lchown(p, uid, gid));
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (fi)
        return ret(ftruncate((int)fi->fh, size));
    REAL(p, path);
    return ret(truncate(p, size));
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    if (fi)
        return ret(futimens((int)fi->fh, tv));
    REAL(p, path);
    return ret(utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW));
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    REAL(p, path);
    int fd = open(p, fi->flags, mode);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    REAL(p, path);
    int fd = open(p, fi->flags & ~O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    return ret((int)pread((int)fi->fh, buf, size, off));
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    return ret((int)pwrite((int)fi->fh, buf, size, off));
}

static int fs_statfs(const char *path, struct statvfs *st)
{
    REAL(p, path);
    return ret(statvfs(p, st));
}

static int fs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    /* close(dup()) as a flush: errors of delayed writes show at the caller's close */
    return ret(close(dup((int)fi->fh)));
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    int fd = (int)fi->fh;
    return ret(datasync ? fdatasync(fd) : fsync(fd));
}

static int fs_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    (void)path;
    return ret(fallocate((int)fi->fh, mode, off, len));
}

static off_t fs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
    (void)path;
    off_t r = lseek((int)fi->fh, off, whence);
    return r < 0 ? -errno : r;
}

/* The point of this file system: every lock request is refused. */
static int fs_lock(const char *path, struct fuse_file_info *fi, int cmd, struct flock *lock)
{
    (void)path, (void)fi, (void)cmd, (void)lock;
    return -refusal;
}

static int fs_flock(const char *path, struct fuse_file_info *fi, int op)
{
    (void)path, (void)fi, (void)op;
    return -refusal;
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .readlink = fs_readlink,
    .readdir = fs_readdir,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .symlink = fs_symlink,
    .rename = fs_rename,
    .link = fs_link,
    .chmod = fs_chmod,
    .chown = fs_chown,
    .truncate = fs_truncate,
    .utimens = fs_utimens,
    .create = fs_create,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .statfs = fs_statfs,
    .flush = fs_flush,
    .release = fs_release,
    .fsync = fs_fsync,
    .fallocate = fs_fallocate,
    .lseek = fs_lseek,
    .lock = fs_lock,
    .flock = fs_flock,
};

int main(int argc, char *argv[])
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s ENOLCK|ENOSYS|EOPNOTSUPP SOURCE MOUNTPOINT [options]\n",
                argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "ENOLCK") == 0)
        refusal = ENOLCK;
    else if (strcmp(argv[1], "ENOSYS") == 0)
        refusal = ENOSYS;
    else if (strcmp(argv[1], "EOPNOTSUPP") == 0)
        refusal = EOPNOTSUPP;
    else {
        fprintf(stderr, "%s: unknown errno %s\n", argv[0], argv[1]);
        return 2;
    }
    if (!realpath(argv[2], source)) {
        perror(argv[2]);
        return 2;
    }
    /* FUSE sees: program MOUNTPOINT [options] */
    argv[2] = argv[0];
    return fuse_main(argc - 2, argv + 2, &ops, NULL);
}
