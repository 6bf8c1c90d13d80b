/*
 * An attacker's library for the tests (compiled by them with gcc): its
 * constructor runs the moment the victim's process maps it, and leaves a
 * file named after that process in MARKER_DIR (given with -D) as proof.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void planted(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/ran-in-pid-%ld", MARKER_DIR, (long)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) close(fd);
}
