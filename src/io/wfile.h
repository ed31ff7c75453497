/*
 * Writing a file atomically, shared by every writer of the library
 * (checkpoints, DOT and rendered graphs, SVG plots).
 *
 * The content goes to a temporary file in the destination's directory,
 * named <target>.tmp.<pid>.XXXXXX, which is flushed, fsynced, given the
 * destination's permissions and renamed over it; the directory is then
 * fsynced.  A crash or kill -9 leaves the old file intact.  The target is
 * the destination with its symbolic links followed, so saving onto a link
 * replaces the file it points to and keeps the link.  Temporary files of
 * this naming for the same target whose process no longer exists (a save
 * killed midway) are removed by the next save; nothing else is touched.
 */
#ifndef NB_WFILE_H
#define NB_WFILE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct nb__wfile {
	FILE *fp;     /* write the content here */
	char *target; /* the destination, links followed */
	char *tmp;    /* the temporary file; NULL when writing directly */
	mode_t mode;  /* permissions of the file replaced, or 0666 less the umask */
} nb__wfile;

/* Opens path for an atomic write.  A destination that exists and is not a
 * regular file (/dev/stdout, a FIFO) is written directly when special_ok,
 * else refused.  On failure returns -1 with the reason in err (e.g.
 * "No such file or directory", "not a regular file (a directory)"). */
int nb__wfile_open(nb__wfile *w, const char *path, bool special_ok, char *err, size_t errlen);

/* Finishes the write: flush, fsync, permissions, close, rename, sync the
 * directory.  On failure returns -1 with "flush of the temporary file X
 * failed: reason" (or write, fsync, close, rename) in err and removes the
 * temporary file; 1 when the file is in place but its directory could not
 * be synced.  w is closed either way. */
int nb__wfile_commit(nb__wfile *w, char *err, size_t errlen);

/* Abandons the write: closes and removes the temporary file. */
void nb__wfile_abort(nb__wfile *w);

#endif
