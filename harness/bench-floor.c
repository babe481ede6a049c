/*
 * The floor of a durable write pointer on this disk, without QEMU: the
 * cost of one more sector written per flush.  A file opened O_DIRECT and
 * allocated beforehand (as qcow2 writes into clusters it allocated, and
 * so that no write extends the file and no fdatasync commits a new size)
 * gets N times, through io_uring:
 *   plain:      write 4 KiB at the end; fdatasync
 *                (what a plain image does for a guest write and flush)
 *   after:      write 4 KiB at the end; write a sector at offset 0;
 *               fdatasync (the same plus one table sector, written after
 *               the data)
 *   alongside:  write 4 KiB at the end and a sector at offset 0, both in
 *               flight at once; fdatasync (the table sector written with
 *               the data)
 * A sector is 512 bytes, or 4 KiB where O_DIRECT refuses 512.  Runs
 * rotate the three; the medians and the ratios to plain are printed.
 *
 * usage: bench-floor DIR N RUNS
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { PLAIN, AFTER, ALONGSIDE, MODES };

static const char *const names[MODES] = {
    "4 KiB write + fdatasync",
    "+ a sector written after it",
    "+ a sector written alongside",
};

static struct io_uring ring;
static char *buf;
static unsigned sector_size = 512;

static void die(const char *what, int err)
{
    fprintf(stderr, "bench-floor: %s: %s\n", what, strerror(err));
    exit(1);
}

/* 4 KiB at @off (unless negative) and, if @sector, a sector at 0, at once */
static void writes(int fd, off_t off, int sector)
{
    struct io_uring_cqe *cqe;
    int i, ret, n = (off >= 0) + !!sector;

    if (off >= 0) {
        io_uring_prep_write(io_uring_get_sqe(&ring), fd, buf, 4096, off);
    }
    if (sector) {
        io_uring_prep_write(io_uring_get_sqe(&ring), fd, buf + 4096,
                            sector_size, 0);
    }
    ret = io_uring_submit(&ring);
    if (ret != n) {
        die("io_uring_submit", ret < 0 ? -ret : EIO);
    }
    for (i = 0; i < n; i++) {
        ret = io_uring_wait_cqe(&ring, &cqe);
        if (ret < 0) {
            die("io_uring_wait_cqe", -ret);
        }
        if (cqe->res < 0) {
            die("write", -cqe->res);
        }
        if ((unsigned)cqe->res != 4096 && (unsigned)cqe->res != sector_size) {
            die("write", EIO);
        }
        io_uring_cqe_seen(&ring, cqe);
    }
}

/* MB/s of one run of @mode */
static double run(const char *dir, int mode, int n)
{
    char path[4096];
    struct timespec t0, t1;
    int fd, i, ret;

    snprintf(path, sizeof(path), "%s/floor.raw", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd < 0) {
        die(path, errno);
    }
    ret = posix_fallocate(fd, 0, (off_t)(n + 1) * 4096);
    if (ret) {
        die("posix_fallocate", ret);
    }
    writes(fd, 0, 0);
    if (fdatasync(fd) < 0) {
        die("fdatasync", errno);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 1; i <= n; i++) {
        writes(fd, (off_t)i * 4096, mode == ALONGSIDE);
        if (mode == AFTER) {
            writes(fd, -1, 1);
        }
        if (fdatasync(fd) < 0) {
            die("fdatasync", errno);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    unlink(path);
    return n * 4096.0 / ((t1.tv_sec - t0.tv_sec) +
                         (t1.tv_nsec - t0.tv_nsec) / 1e9) / 1048576;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    double *mbs[MODES], med[MODES];
    int n, runs, r, k, ret;

    if (argc != 4 || (n = atoi(argv[2])) < 1 || (runs = atoi(argv[3])) < 1) {
        fprintf(stderr, "usage: bench-floor DIR N RUNS\n");
        return 2;
    }
    if (posix_memalign((void **)&buf, 4096, 8192)) {
        die("posix_memalign", ENOMEM);
    }
    memset(buf, 0x5a, 8192);
    {
        /* O_DIRECT in 512-byte units, or only in 4 KiB ones? */
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/floor.raw", argv[1]);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
        if (fd < 0) {
            die(path, errno);
        }
        if (pwrite(fd, buf, 512, 0) != 512) {
            sector_size = 4096;
        }
        close(fd);
        unlink(path);
    }
    ret = io_uring_queue_init(8, &ring, 0);
    if (ret < 0) {
        die("io_uring_queue_init", -ret);
    }
    for (k = 0; k < MODES; k++) {
        mbs[k] = calloc(runs, sizeof(double));
        if (!mbs[k]) {
            die("calloc", ENOMEM);
        }
    }
    for (r = 0; r < runs; r++) {
        /* rotate which mode goes first */
        for (k = 0; k < MODES; k++) {
            int m = (k + r) % MODES;

            mbs[m][r] = run(argv[1], m, n);
        }
    }
    for (k = 0; k < MODES; k++) {
        med[k] = median(mbs[k], runs);
        if (k == PLAIN) {
            printf("%-28s %8.1f MB/s\n", names[k], med[k]);
        } else {
            printf("%-28s %8.1f MB/s  ratio %.3f\n", names[k], med[k],
                   med[k] / med[PLAIN]);
        }
    }
    return 0;
}
