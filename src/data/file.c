/*
 * Opening and reading the files users hand to the readers (datasets and
 * checkpoints).  Only regular files are read: a FIFO, a device (say a
 * symlink to /dev/zero), a socket or a directory is refused at once, and
 * the open itself cannot block (O_NONBLOCK), so no reader waits forever
 * or reads without end.  Content that starts with the gzip magic is
 * inflated member by member; bytes after the last member that are not
 * another member are refused, as is a member cut short.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/internal.h"

#define RFILE_IN 65536 /* compressed bytes read from the disk at a time */

static const char *kind_of(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISSOCK(m) ? "a socket"
	                     : "a special file";
}

nb_status nb__open_regular(const char *path, int *fd_out, uint64_t *size, char *err, size_t errlen)
{
	*fd_out = -1;
	*size = 0;
	/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer;
	 * the FIFO is then refused by its type */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return nb__data_err(err, errlen, NB_ERR_IO, "%s: cannot open: %s", path,
		                    strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return nb__data_err(err, errlen, NB_ERR_IO, "%s: cannot stat: %s", path,
		                    strerror(e));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return nb__data_err(err, errlen, NB_ERR_IO, "%s: not a regular file (%s)", path,
		                    kind_of(sb.st_mode));
	}
	/* reads of a regular file do not block; clear the flag all the same */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*fd_out = fd;
	*size = (uint64_t)sb.st_size;
	return NB_OK;
}

/* read(2) until n bytes, the end of the file or an error (-1) */
static ssize_t read_full(int fd, uint8_t *dst, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, dst + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

nb_status nb__rfile_open(nb__rfile *f, const char *path, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->path = path;
	nb_status st = nb__open_regular(path, &f->fd, &f->size, err, errlen);
	if (st != NB_OK)
		return st;
	if (!(f->in = malloc(RFILE_IN))) {
		nb__rfile_close(f);
		return nb__data_err(err, errlen, NB_ERR_NOMEM, "%s: out of memory", path);
	}
	ssize_t r = read_full(f->fd, f->in, RFILE_IN);
	if (r < 0) {
		int e = errno;
		nb__rfile_close(f);
		return nb__data_err(err, errlen, NB_ERR_IO, "%s: read error: %s", path,
		                    strerror(e));
	}
	f->have = (size_t)r;
	f->disk = (uint64_t)r;
	/* the gzip magic, as zlib's gzread decides */
	f->gz = r >= 2 && f->in[0] == 0x1f && f->in[1] == 0x8b;
	if (f->gz) {
		int zr = inflateInit2(&f->z, 15 + 16); /* gzip wrapper only */
		if (zr != Z_OK) {
			nb__rfile_close(f);
			return nb__data_err(err, errlen, NB_ERR_NOMEM,
			                    "%s: out of memory for decompression", path);
		}
		f->z_live = true;
		f->z.next_in = f->in;
		f->z.avail_in = (uInt)f->have;
		f->in_member = true;
	}
	return NB_OK;
}

void nb__rfile_close(nb__rfile *f)
{
	if (f->z_live)
		inflateEnd(&f->z);
	if (f->fd >= 0)
		close(f->fd);
	free(f->in);
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

/* the uncompressed file: the buffered start, then the descriptor */
static nb_status raw_read(nb__rfile *f, uint8_t *dst, size_t n, size_t *got, char *err,
                          size_t errlen)
{
	size_t k = f->have - f->used < n ? f->have - f->used : n;
	memcpy(dst, f->in + f->used, k);
	f->used += k;
	if (k < n && f->have == RFILE_IN) {
		ssize_t r = read_full(f->fd, dst + k, n - k);
		if (r < 0)
			return nb__data_err(err, errlen, NB_ERR_IO, "%s: read error: %s", f->path,
			                    strerror(errno));
		k += (size_t)r;
	}
	*got = k;
	return NB_OK;
}

/* bytes after the last gzip member that are not one */
static nb_status trailing(const nb__rfile *f, char *err, size_t errlen)
{
	uint64_t n = f->size - f->member_start;
	return nb__data_err(err, errlen, NB_ERR_FORMAT,
	                    "%s: %llu byte%s of trailing data after the end of the gzip data "
	                    "(at byte %llu of %llu)",
	                    f->path, (unsigned long long)n, n == 1 ? "" : "s",
	                    (unsigned long long)f->member_start, (unsigned long long)f->size);
}

static nb_status gz_read(nb__rfile *f, uint8_t *dst, size_t n, size_t *got, char *err,
                         size_t errlen)
{
	size_t k = 0;
	while (k < n && !f->done) {
		if (f->z.avail_in == 0) {
			ssize_t r = read_full(f->fd, f->in, RFILE_IN);
			if (r < 0)
				return nb__data_err(err, errlen, NB_ERR_IO, "%s: read error: %s",
				                    f->path, strerror(errno));
			if (r == 0) {
				if (f->in_member && f->members > 0 && f->member_start > 0)
					return trailing(f, err, errlen);
				if (f->in_member)
					return nb__data_err(
					    err, errlen, NB_ERR_FORMAT,
					    "%s: bad gzip data: unexpected end of file", f->path);
				f->done = true;
				break;
			}
			f->disk += (uint64_t)r;
			f->z.next_in = f->in;
			f->z.avail_in = (uInt)r;
		}
		if (!f->in_member) {
			/* a member ended and more bytes follow: another member
			 * (concatenated gzip files are one stream), or not */
			inflateReset(&f->z);
			f->in_member = true;
			f->member_start = f->disk - f->z.avail_in;
		}
		size_t want = n - k < UINT_MAX ? n - k : UINT_MAX;
		f->z.next_out = dst + k;
		f->z.avail_out = (uInt)want;
		int zr = inflate(&f->z, Z_NO_FLUSH);
		size_t made = want - f->z.avail_out;
		k += made;
		if (made)
			f->member_start = 0;
		if (zr == Z_STREAM_END) {
			f->in_member = false;
			f->members++;
		} else if (zr == Z_MEM_ERROR) {
			return nb__data_err(err, errlen, NB_ERR_NOMEM,
			                    "%s: out of memory decompressing", f->path);
		} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			if (f->members > 0 && f->member_start > 0)
				return trailing(f, err, errlen);
			return nb__data_err(err, errlen, NB_ERR_FORMAT, "%s: bad gzip data: %s",
			                    f->path, f->z.msg ? f->z.msg : "corrupt stream");
		}
	}
	*got = k;
	return NB_OK;
}

nb_status nb__rfile_read(nb__rfile *f, void *dst, size_t n, size_t *got, char *err, size_t errlen)
{
	*got = 0;
	if (n == 0)
		return NB_OK;
	nb_status st =
	    f->gz ? gz_read(f, dst, n, got, err, errlen) : raw_read(f, dst, n, got, err, errlen);
	f->pos += *got;
	return st;
}

nb_status nb__rfile_extra(nb__rfile *f, uint64_t limit, uint64_t *extra, char *err, size_t errlen)
{
	*extra = 0;
	/* an uncompressed file: its size says it (unless it grows meanwhile) */
	if (!f->gz && f->size > f->pos) {
		*extra = f->size - f->pos;
		return NB_OK;
	}
	uint8_t tmp[4096];
	while (*extra <= limit) {
		size_t got, want = limit + 1 - *extra < sizeof tmp ? (size_t)(limit + 1 - *extra)
		                                                   : sizeof tmp;
		nb_status st = nb__rfile_read(f, tmp, want, &got, err, errlen);
		if (st != NB_OK)
			return st;
		if (got == 0)
			break;
		*extra += got;
	}
	return NB_OK;
}

nb_status nb__slurp(const char *path, size_t cap, uint8_t **buf, size_t *len, char *err,
                    size_t errlen)
{
	*buf = NULL, *len = 0;
	nb__rfile f;
	nb_status st = nb__rfile_open(&f, path, err, errlen);
	if (st != NB_OK)
		return st;
	if (!f.gz && f.size > cap) {
		nb__rfile_close(&f);
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s: %llu bytes, larger than %zu bytes, the most this reader "
		                    "accepts",
		                    path, (unsigned long long)f.size, cap);
	}
	size_t size = 0, alloc = 0;
	uint8_t *p = NULL;
	for (;;) {
		if (size == alloc) {
			/* one byte past the cap tells "too large" from "exactly cap" */
			if (alloc > cap) {
				st = nb__data_err(err, errlen, NB_ERR_FORMAT,
				                  "%s: larger than %zu bytes, the most this reader "
				                  "accepts",
				                  path, cap);
				break;
			}
			/* a raw file: its size (and one byte to see it end) */
			size_t na = !f.gz && alloc == 0 ? (size_t)f.size + 1
			            : alloc             ? alloc * 2
			                                : (size_t)1 << 16;
			if (na > cap + 1)
				na = cap + 1;
			uint8_t *np = realloc(p, na);
			if (!np) {
				st = nb__data_err(err, errlen, NB_ERR_NOMEM,
				                  "%s: out of memory reading %zu bytes", path, na);
				break;
			}
			p = np, alloc = na;
		}
		size_t got;
		st = nb__rfile_read(&f, p + size, alloc - size, &got, err, errlen);
		if (st != NB_OK || got == 0)
			break;
		size += got;
	}
	nb__rfile_close(&f);
	if (st != NB_OK) {
		free(p);
		return st;
	}
	*buf = p, *len = size;
	return NB_OK;
}
