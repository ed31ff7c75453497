/* Atomic file writing (see wfile.h). */
#include "io/wfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINKS 40 /* the kernel's limit on links followed in a path */

static int werr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int werr(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* the directory part of path with its slash ("d/" of "d/f"), "" for none */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? (size_t)(slash - path) + 1 : 0;
}

/* path with the symbolic links of its last component followed, to a file
 * that may not exist yet (as open(O_CREAT) would follow them); malloc'd,
 * NULL with errno set.  *magic is set at a link of /proc (/dev/stdout,
 * /dev/fd/N): its text names an open file, which may be a pipe or a file
 * deleted or opened elsewhere, and only writing through it reaches that. */
static char *resolve(const char *path, bool *magic)
{
	struct stat proc;
	bool have_proc = lstat("/proc/self", &proc) == 0;
	char *cur = strdup(path);
	*magic = false;
	for (int hops = 0; cur; hops++) {
		struct stat sb;
		if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode))
			return cur; /* the target; open or rename reports any error */
		if (have_proc && sb.st_dev == proc.st_dev) {
			*magic = true;
			return cur;
		}
		char link[PATH_MAX];
		ssize_t n = hops < MAX_LINKS ? readlink(cur, link, sizeof link - 1) : -1;
		if (hops >= MAX_LINKS)
			errno = ELOOP;
		if (n < 0 || (size_t)n >= sizeof link - 1) {
			int e = n < 0 ? errno : ENAMETOOLONG;
			free(cur);
			errno = e;
			return NULL;
		}
		link[n] = 0;
		/* a relative link is relative to the directory holding it */
		size_t dl = link[0] == '/' ? 0 : dir_len(cur);
		char *next = malloc(dl + (size_t)n + 1);
		if (next) {
			memcpy(next, cur, dl);
			memcpy(next + dl, link, (size_t)n + 1);
		}
		free(cur);
		cur = next;
	}
	return NULL;
}

/* Permission bits for the new file: those of the file it replaces, or
 * 0666 less the umask (mkstemp creates 0600).  The umask is read from
 * /proc, since umask() cannot be read without changing it. */
static mode_t new_mode(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) == 0)
		return sb.st_mode & 07777;
	mode_t mask = 022;
	FILE *fp = fopen("/proc/self/status", "r");
	char line[128];
	while (fp && fgets(line, sizeof line, fp))
		if (!strncmp(line, "Umask:", 6)) {
			mask = (mode_t)strtoul(line + 6, NULL, 8);
			break;
		}
	if (fp)
		fclose(fp);
	return 0666 & ~mask;
}

/* Removes <base>.tmp.<pid>.XXXXXX in the directory of target when process
 * pid no longer exists: what a save killed midway left behind. */
static void remove_stale(const char *target)
{
	size_t dl = dir_len(target);
	const char *base = target + dl;
	size_t bl = strlen(base);
	char *dir = dl ? strndup(target, dl) : strdup(".");
	DIR *dp = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (dp && (e = readdir(dp))) {
		const char *n = e->d_name;
		if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5))
			continue;
		const char *q = n + bl + 5, *digits = q;
		long pid = 0;
		while (*q >= '0' && *q <= '9' && pid < INT_MAX / 10)
			pid = pid * 10 + (*q++ - '0');
		if (q == digits || *q != '.' || strlen(q + 1) != 6 || pid <= 0)
			continue;
		bool suffix = true;
		for (const char *s = q + 1; *s; s++)
			suffix &= (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			          (*s >= '0' && *s <= '9');
		if (!suffix || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		struct stat sb;
		if (fstatat(dirfd(dp), n, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_uid == geteuid())
			unlinkat(dirfd(dp), n, 0);
	}
	if (dp)
		closedir(dp);
	free(dir);
}

static const char *kind_of(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISSOCK(m) ? "a socket"
	                     : "a special file";
}

/* Writes straight into an existing special file (no temporary file),
 * truncating it as fopen(path, "w") would. */
static int open_direct(nb__wfile *w, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO with no reader fails (ENXIO) instead of waiting */
	int fd = open(w->target, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return werr(err, errlen, "%s", strerror(errno));
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (!(w->fp = fdopen(fd, "wb"))) {
		int e = errno;
		close(fd);
		return werr(err, errlen, "%s", strerror(e));
	}
	return 0;
}

int nb__wfile_open(nb__wfile *w, const char *path, bool special_ok, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	bool magic;
	if (!(w->target = resolve(path, &magic)))
		return werr(err, errlen, "%s", strerror(errno));
	struct stat sb;
	if (magic) {
		if (special_ok && open_direct(w, err, errlen) == 0)
			return 0;
		if (!special_ok)
			werr(err, errlen, "not a regular file (an open file's link in /proc)");
		nb__wfile_abort(w);
		return -1;
	}
	if (stat(w->target, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		if (special_ok && !S_ISDIR(sb.st_mode) && open_direct(w, err, errlen) == 0)
			return 0;
		if (!special_ok || S_ISDIR(sb.st_mode))
			werr(err, errlen, "not a regular file (%s)", kind_of(sb.st_mode));
		nb__wfile_abort(w);
		return -1;
	}
	remove_stale(w->target);
	w->mode = new_mode(w->target);
	char pid[32];
	int pl = snprintf(pid, sizeof pid, ".tmp.%ld.XXXXXX", (long)getpid());
	size_t tl = strlen(w->target);
	if (!(w->tmp = malloc(tl + (size_t)pl + 1))) {
		nb__wfile_abort(w);
		return werr(err, errlen, "%s", strerror(ENOMEM));
	}
	memcpy(w->tmp, w->target, tl);
	memcpy(w->tmp + tl, pid, (size_t)pl + 1);
	int fd = mkstemp(w->tmp);
	if (fd < 0) {
		int e = errno;
		free(w->tmp), w->tmp = NULL;
		nb__wfile_abort(w);
		return werr(err, errlen, "%s", strerror(e));
	}
	if (!(w->fp = fdopen(fd, "wb"))) {
		int e = errno;
		close(fd);
		nb__wfile_abort(w);
		return werr(err, errlen, "%s", strerror(e));
	}
	return 0;
}

void nb__wfile_abort(nb__wfile *w)
{
	if (w->fp)
		fclose(w->fp);
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	free(w->target);
	memset(w, 0, sizeof *w);
}

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
	size_t dl = dir_len(path);
	char *dir = dl ? strndup(path, dl) : strdup(".");
	if (!dir)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return 0; /* an unreadable directory cannot be synced; the rename is done */
	int r = fsync(fd);
	/* some file systems do not sync directories */
	if (r < 0 && (errno == EINVAL || errno == ENOTSUP))
		r = 0;
	close(fd);
	return r;
}

int nb__wfile_commit(nb__wfile *w, char *err, size_t errlen)
{
	FILE *fp = w->fp;
	w->fp = NULL;
	if (!w->tmp) { /* written directly */
		bool bad = ferror(fp) != 0;
		int e = errno;
		if (fclose(fp) != 0 || bad) {
			werr(err, errlen, "writing failed: %s", strerror(bad ? e : errno));
			nb__wfile_abort(w);
			return -1;
		}
		nb__wfile_abort(w);
		return 0;
	}
	const char *what = "write";
	if (ferror(fp)) {
		errno = errno ? errno : EIO;
		goto fail_fp;
	}
	what = "flush";
	if (fflush(fp) != 0)
		goto fail_fp;
	what = "fsync";
	if (fsync(fileno(fp)) != 0 || fchmod(fileno(fp), w->mode) != 0)
		goto fail_fp;
	what = "close";
	if (fclose(fp) != 0)
		goto fail;
	what = "rename";
	if (rename(w->tmp, w->target) != 0)
		goto fail;
	free(w->tmp), w->tmp = NULL;
	int r = sync_dir(w->target);
	if (r != 0)
		werr(err, errlen, "written, but syncing its directory failed: %s", strerror(errno));
	nb__wfile_abort(w);
	return r != 0;
fail_fp : {
	int e = errno;
	fclose(fp);
	errno = e;
}
fail:
	werr(err, errlen, "%s of the temporary file %s failed: %s", what, w->tmp, strerror(errno));
	nb__wfile_abort(w);
	return -1;
}
