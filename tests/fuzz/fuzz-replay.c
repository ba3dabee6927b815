/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Runs a libFuzzer target without libFuzzer: every file in the directories
 * named on the command line (the seed corpus and kept crash inputs), then
 * mutations of
 * them and random inputs, so that `make check` exercises the fuzz targets
 * under the sanitizers on every run.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static uint64_t
next (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static uint8_t buf[70000];
static uint64_t seed = 0x6d63736563ull;
static long runs;

static int
run_file (const char *path)
{
  FILE *f = fopen (path, "rb");
  size_t n;

  if (f == NULL) {
    perror (path);
    return -1;
  }
  {
    n = fread (buf, 1, sizeof (buf), f);
    fclose (f);
    LLVMFuzzerTestOneInput (buf, n);
    runs++;
    /* byte flips, truncations and extensions of each input */
    for (int m = 0; m < 2000; m++) {
      size_t len = n;
      uint8_t save[4];
      size_t pos[4];
      for (int k = 0; k < 4 && n; k++) {
        pos[k] = next (&seed) % n;
        save[k] = buf[pos[k]];
        buf[pos[k]] ^= (uint8_t)next (&seed);
      }
      if (m % 3 == 0 && n)
        len = next (&seed) % (n + 1);
      else if (m % 3 == 1)
        len = n + next (&seed) % 64 < sizeof (buf) ? n + next (&seed) % 64 : n;
      LLVMFuzzerTestOneInput (buf, len);
      runs++;
      for (int k = 3; k >= 0 && n; k--)
        buf[pos[k]] = save[k];
    }
  }
  return 0;
}

int
main (int argc, char **argv)
{
  int files = 0;

  for (int a = 1; a < argc; a++) {
    DIR *d = opendir (argv[a]);
    struct dirent *e;
    char path[4096];
    if (d == NULL) {
      perror (argv[a]);
      return 1;
    }
    while ((e = readdir (d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      snprintf (path, sizeof (path), "%s/%s", argv[a], e->d_name);
      if (run_file (path) != 0)
        return 1;
      files++;
    }
    closedir (d);
  }
  if (argc > 1 && files == 0) {
    fprintf (stderr, "fuzz-replay: empty corpus\n");
    return 1;
  }
  for (int i = 0; i < 20000; i++) {
    size_t len = next (&seed) % 1600;
    for (size_t j = 0; j < len; j++)
      buf[j] = (uint8_t)next (&seed);
    if (len >= 4 && (i & 1)) {
      buf[0] = 0, buf[1] = 0, buf[2] = 0x12, buf[3] = 0x34 + (i & 2 ? 1 : 0);
    }
    LLVMFuzzerTestOneInput (buf, len);
    runs++;
  }
  printf ("fuzz-replay: %d corpus files, %ld inputs, no crash\n", files, runs);
  return 0;
}
