/*
 * An attacker's swap loop for the tests (compiled by them with gcc, never
 * committed as a binary): exchanges pairs of paths atomically with
 * renameat2(RENAME_EXCHANGE) for the given number of milliseconds or until
 * SIGTERM. The directory holding each <a> is opened once at the start, so
 * <a> keeps being reached after the victim moves that directory elsewhere.
 *
 *   exchange [--interval <microseconds>] <milliseconds> <a> <b> [<a> <b>…]
 *       every pair, over and over: as fast as possible, or with a pause after
 *       each round (a state that lasts longer than the victim's checks wins
 *       more often than one that flips between them)
 *   exchange --on-change <milliseconds> <a> <b> [<a> <b>…]
 *       each pair once, the moment directory <a> changes (the victim has
 *       started deleting in it): what it deletes next is reached through <b>
 *
 * Prints how many exchanges succeeded.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MAX_PAIRS 64

struct pair {
  int dir;               /* the directory holding a, opened at the start */
  char name[256];        /* a's name in it */
  const char *b;
  struct timespec mtime; /* a's mtime at the start (--on-change) */
  int done;
};

static volatile sig_atomic_t stopped = 0;

static void stop(int sig) {
  (void)sig;
  stopped = 1;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int exchange(const struct pair *p) {
  return syscall(SYS_renameat2, p->dir, p->name, AT_FDCWD, p->b, RENAME_EXCHANGE) == 0;
}

int main(int argc, char **argv) {
  int arg = 1;
  int on_change = argc > 1 && strcmp(argv[1], "--on-change") == 0;
  if (on_change) arg++;
  long interval_us = 0;
  if (!on_change && argc > 2 && strcmp(argv[1], "--interval") == 0) {
    interval_us = atol(argv[2]);
    arg += 2;
  }
  if (argc - arg < 3 || (argc - arg - 1) % 2 != 0 || (argc - arg - 1) / 2 > MAX_PAIRS) {
    fprintf(stderr, "usage: exchange [--on-change | --interval <microseconds>] <milliseconds> <a> <b> [<a> <b>...]\n");
    return 2;
  }
  double end = now_ms() + atof(argv[arg++]);
  struct pair pairs[MAX_PAIRS];
  int n = 0;
  for (; arg + 1 < argc; arg += 2, n++) {
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", argv[arg]);
    snprintf(base, sizeof base, "%s", argv[arg]);
    pairs[n].dir = open(dirname(dir), O_PATH | O_DIRECTORY);
    snprintf(pairs[n].name, sizeof pairs[n].name, "%s", basename(base));
    pairs[n].b = argv[arg + 1];
    pairs[n].done = 0;
    struct stat st;
    if (pairs[n].dir < 0 || fstatat(pairs[n].dir, pairs[n].name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      perror(argv[arg]);
      return 1;
    }
    pairs[n].mtime = st.st_mtim;
  }
  signal(SIGTERM, stop);
  long swaps = 0;
  int left = n;
  while (!stopped && left > 0 && now_ms() < end) {
    for (int i = 0; i < n; i++) {
      struct pair *p = &pairs[i];
      if (!on_change) {
        swaps += exchange(p);
        if (interval_us > 0 && i == n - 1) usleep(interval_us);
        continue;
      }
      if (p->done) continue;
      struct stat st;
      if (fstatat(p->dir, p->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        p->done = 1;
        left--;
      } else if (st.st_mtim.tv_sec != p->mtime.tv_sec || st.st_mtim.tv_nsec != p->mtime.tv_nsec) {
        swaps += exchange(p);
        p->done = 1;
        left--;
      }
    }
  }
  if (on_change) while (!stopped && now_ms() < end) usleep(1000);
  printf("%ld\n", swaps);
  return 0;
}
