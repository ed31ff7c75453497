/*
 * IDX reader (the MNIST / Fashion-MNIST file format).
 *
 * An IDX file is a 4-byte magic number 0x0000TTDD (TT the element type,
 * 0x08 for unsigned bytes; DD the number of dimensions), DD big-endian
 * 32-bit sizes, then the elements in row-major order.  The images file is
 * 0x00000803 [n, rows, cols]; the labels file 0x00000801 [n].
 *
 * Everything is validated before anything is allocated: the header, the
 * product of the sizes (against overflow and NB_DATA_MAX_VALUES), and that
 * the buffer holds exactly the bytes announced — a truncated file and one
 * with trailing bytes both fail with the two sizes in the message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/internal.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_DIMS 3

typedef struct idx_array {
	int ndim;
	uint32_t dims[IDX_MAX_DIMS];
	uint64_t count;      /* product of dims */
	const uint8_t *data; /* count bytes */
} idx_array;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *type_name(unsigned t)
{
	switch (t) {
	case 0x08:
		return "unsigned byte";
	case 0x09:
		return "signed byte";
	case 0x0B:
		return "short";
	case 0x0C:
		return "int";
	case 0x0D:
		return "float";
	case 0x0E:
		return "double";
	default:
		return "unknown";
	}
}

/* "60000 x 28 x 28" */
static void dims_str(const idx_array *a, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = 0;
	for (int i = 0; i < a->ndim && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, i ? " x %u" : "%u", a->dims[i]);
}

/* Validates the header of an IDX array of unsigned bytes (the magic
 * 0x000008<ndim>, the sizes and their product) in the first len bytes of
 * buf; sets a's dims and count. */
static nb_status idx_header(const uint8_t *buf, size_t len, const char *name, int ndim,
                            const char *what, idx_array *a, char *err, size_t errlen)
{
	const uint32_t want = 0x800u | (uint32_t)ndim;
	if (len < 4)
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s: too short for an IDX file: %zu bytes, expected at least "
		                    "4 for the magic number (0x%08x, %s)",
		                    name, len, want, what);
	uint32_t magic = be32(buf);
	if (magic != want) {
		unsigned type = (magic >> 8) & 0xff, dims = magic & 0xff;
		if (magic >> 16)
			return nb__data_err(err, errlen, NB_ERR_FORMAT,
			                    "%s: not an IDX file: magic number 0x%08x, expected "
			                    "0x%08x (%s)%s",
			                    name, magic, want, what,
			                    buf[0] == 0x1f && buf[1] == 0x8b
			                        ? "; the data is gzip-compressed"
			                        : "");
		if (type != 0x08)
			return nb__data_err(
			    err, errlen, NB_ERR_FORMAT,
			    "%s: magic number 0x%08x: elements of type 0x%02x (%s), "
			    "expected 0x%08x (%s, unsigned bytes)",
			    name, magic, type, type_name(type), want, what);
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s: magic number 0x%08x: %u dimensions, expected 0x%08x "
		                    "(%s, %d dimensions)",
		                    name, magic, dims, want, what, ndim);
	}
	size_t header = 4 + 4 * (size_t)ndim;
	if (len < header)
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s: truncated header: %zu bytes, expected %zu (magic and %d "
		                    "sizes)",
		                    name, len, header, ndim);
	a->ndim = ndim;
	a->count = 1;
	for (int i = 0; i < ndim; i++) {
		a->dims[i] = be32(buf + 4 + 4 * i);
		if (a->dims[i] == 0)
			return nb__data_err(err, errlen, NB_ERR_FORMAT,
			                    "%s: size %d in the header is 0 (%s)", name, i, what);
		/* count <= 2^31 before, dims < 2^32: the product fits in 64 bits */
		a->count *= a->dims[i];
		if (a->count > (uint64_t)NB_DATA_MAX_VALUES) {
			char d[64];
			a->ndim = i + 1;
			dims_str(a, d, sizeof d);
			return nb__data_err(err, errlen, NB_ERR_FORMAT,
			                    "%s: sizes %s%s in the header exceed the limit of %lld "
			                    "values",
			                    name, d, i + 1 < ndim ? " x ..." : "",
			                    (long long)NB_DATA_MAX_VALUES);
		}
	}
	return NB_OK;
}

/* The message for an array of header + a->count bytes held in len bytes
 * (more than len when over is set: counting stopped there). */
static nb_status idx_size_error(const idx_array *a, const char *name, uint64_t len, bool over,
                                char *err, size_t errlen)
{
	char d[64];
	dims_str(a, d, sizeof d);
	size_t header = 4 + 4 * (size_t)a->ndim;
	uint64_t expect = header + a->count;
	bool shortf = len < expect;
	return nb__data_err(err, errlen, NB_ERR_FORMAT,
	                    "%s: %s: expected %llu bytes (%zu-byte header + %s bytes), "
	                    "found %s%llu (%s%llu %s)",
	                    name, shortf ? "truncated" : "trailing bytes",
	                    (unsigned long long)expect, header, d, over ? "more than " : "",
	                    (unsigned long long)len, over ? "over " : "",
	                    (unsigned long long)(shortf ? expect - len : len - expect),
	                    shortf ? "missing" : "extra");
}

/* Validates one IDX array of unsigned bytes with the magic 0x000008<ndim>. */
static nb_status idx_array_parse(const uint8_t *buf, size_t len, const char *name, int ndim,
                                 const char *what, idx_array *a, char *err, size_t errlen)
{
	nb_status st = idx_header(buf, len, name, ndim, what, a, err, errlen);
	if (st != NB_OK)
		return st;
	size_t header = 4 + 4 * (size_t)ndim;
	if ((uint64_t)len != header + a->count)
		return idx_size_error(a, name, len, false, err, errlen);
	a->data = buf + header;
	return NB_OK;
}

nb_status nb__idx_parse_named(const uint8_t *img, size_t img_len, const char *img_name,
                              const uint8_t *lab, size_t lab_len, const char *lab_name,
                              int num_classes, nb_dataset *out, char *err, size_t errlen)
{
	if (!out)
		return nb__data_err(err, errlen, NB_ERR_ARG, "idx: out is NULL");
	memset(out, 0, sizeof *out);
	if ((!img && img_len) || (!lab && lab_len))
		return nb__data_err(err, errlen, NB_ERR_ARG, "idx: NULL buffer with a length");
	if (num_classes < 0 || num_classes > 256)
		return nb__data_err(err, errlen, NB_ERR_ARG,
		                    "idx: num_classes %d (expected 0 for max label + 1, or 1..256)",
		                    num_classes);
	idx_array im, lb;
	nb_status st = idx_array_parse(img, img_len, img_name, 3, "images", &im, err, errlen);
	if (st == NB_OK)
		st = idx_array_parse(lab, lab_len, lab_name, 1, "labels", &lb, err, errlen);
	if (st != NB_OK)
		return st;
	if (im.dims[0] != lb.dims[0])
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s has %u images but %s has %u labels", img_name, im.dims[0],
		                    lab_name, lb.dims[0]);
	int max = 0;
	for (uint32_t i = 0; i < lb.dims[0]; i++) {
		if (num_classes && lb.data[i] >= num_classes)
			return nb__data_err(err, errlen, NB_ERR_FORMAT,
			                    "%s: label %u of sample %u is out of range [0, %d]",
			                    lab_name, lb.data[i], i, num_classes - 1);
		if (lb.data[i] > max)
			max = lb.data[i];
	}
	st = nb__dataset_alloc(out, im.dims[0], 1, (int)im.dims[1], (int)im.dims[2],
	                       num_classes ? num_classes : max + 1);
	if (st != NB_OK)
		return nb__data_err(err, errlen, st, "%s: out of memory for %llu values", img_name,
		                    (unsigned long long)im.count);
	for (uint64_t i = 0; i < im.count; i++)
		out->x[i] = (float)im.data[i] / 255.0f;
	for (uint32_t i = 0; i < lb.dims[0]; i++)
		out->y[i] = lb.data[i];
	return NB_OK;
}

nb_status nb_idx_parse(const void *images, size_t images_len, const void *labels, size_t labels_len,
                       int num_classes, nb_dataset *out, char *err, size_t errlen)
{
	return nb__idx_parse_named(images, images_len, "images", labels, labels_len, "labels",
	                           num_classes, out, err, errlen);
}

/* a compressed file's buffer starts at this size and doubles as data comes */
#define IDX_GROW ((size_t)1 << 20)
/* trailing bytes of a compressed file counted for the message, at most */
#define IDX_EXTRA_COUNT ((uint64_t)1 << 20)

/* Reads an IDX file: its header first, checked (the sizes against the
 * limit and, for an uncompressed file, against the file's size) before
 * anything is allocated; then exactly the bytes it announces; then
 * whether more follow.  A header announcing too much costs nothing, and
 * no compressed file is inflated past its announced size (plus a count of
 * the bytes after it, without keeping them). */
static nb_status idx_read(const char *path, int ndim, const char *what, uint8_t **buf, size_t *len,
                          char *err, size_t errlen)
{
	*buf = NULL, *len = 0;
	nb__rfile f;
	nb_status st = nb__rfile_open(&f, path, err, errlen);
	if (st != NB_OK)
		return st;
	uint8_t hdr[4 + 4 * IDX_MAX_DIMS];
	size_t header = 4 + 4 * (size_t)ndim, got = 0;
	idx_array a = {0};
	uint8_t *p = NULL;
	st = nb__rfile_read(&f, hdr, header, &got, err, errlen);
	if (st == NB_OK)
		st = idx_header(hdr, got, path, ndim, what, &a, err, errlen);
	uint64_t expect = header + a.count, extra = 0;
	if (st == NB_OK && !f.gz && f.size != expect)
		st = idx_size_error(&a, path, f.size, false, err, errlen);
	/* an uncompressed file holds what it announces (checked above); a
	 * compressed one may hold less, so its buffer grows with the data */
	size_t cap = f.gz && expect > IDX_GROW ? IDX_GROW : (size_t)expect, have = header;
	if (st == NB_OK && !(p = malloc(cap)))
		st = nb__data_err(err, errlen, NB_ERR_NOMEM, "%s: out of memory for %zu bytes",
		                  path, cap);
	if (st == NB_OK)
		memcpy(p, hdr, header);
	while (st == NB_OK && have < expect) {
		if (have == cap) {
			size_t nc = cap * 2 < expect ? cap * 2 : (size_t)expect;
			uint8_t *np = realloc(p, nc);
			if (!np) {
				st = nb__data_err(err, errlen, NB_ERR_NOMEM,
				                  "%s: out of memory for %zu bytes", path, nc);
				break;
			}
			p = np, cap = nc;
		}
		size_t want = cap - have;
		st = nb__rfile_read(&f, p + have, want, &got, err, errlen);
		have += got;
		if (got < want)
			break; /* the end of the data */
	}
	if (st == NB_OK && have < expect)
		st = idx_size_error(&a, path, have, false, err, errlen);
	if (st == NB_OK)
		st = nb__rfile_extra(&f, IDX_EXTRA_COUNT, &extra, err, errlen);
	if (st == NB_OK && extra)
		st = extra > IDX_EXTRA_COUNT && f.gz
		         ? idx_size_error(&a, path, expect + IDX_EXTRA_COUNT, true, err, errlen)
		         : idx_size_error(&a, path, expect + extra, false, err, errlen);
	nb__rfile_close(&f);
	if (st != NB_OK) {
		free(p);
		return st;
	}
	*buf = p, *len = (size_t)expect;
	return NB_OK;
}

nb_status nb_idx_load_classes(const char *images_path, const char *labels_path, int num_classes,
                              nb_dataset *out, char *err, size_t errlen)
{
	if (out)
		memset(out, 0, sizeof *out);
	if (!images_path || !labels_path || !out)
		return nb__data_err(err, errlen, NB_ERR_ARG, "nb_idx_load: NULL argument");
	uint8_t *img = NULL, *lab = NULL;
	size_t img_len, lab_len;
	nb_status st = idx_read(images_path, 3, "images", &img, &img_len, err, errlen);
	if (st == NB_OK)
		st = idx_read(labels_path, 1, "labels", &lab, &lab_len, err, errlen);
	if (st == NB_OK)
		st = nb__idx_parse_named(img, img_len, images_path, lab, lab_len, labels_path,
		                         num_classes, out, err, errlen);
	free(img);
	free(lab);
	return st;
}

nb_status nb_idx_load(const char *images_path, const char *labels_path, nb_dataset *out, char *err,
                      size_t errlen)
{
	return nb_idx_load_classes(images_path, labels_path, 10, out, err, errlen);
}

/* dir/name.gz, or dir/name when only that exists.  A name exists when it
 * can be looked up at all: one that cannot be read (permissions, a loop
 * of links, ...) is still the file meant, and opening it reports why. */
static void data_path(const char *dir, const char *name, char *buf, size_t n)
{
	size_t dl = strlen(dir);
	const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
	struct stat sb;
	snprintf(buf, n, "%s%s%s.gz", dir, sep, name);
	if (stat(buf, &sb) == 0 || errno != ENOENT)
		return;
	char raw[4096];
	snprintf(raw, sizeof raw, "%s%s%s", dir, sep, name);
	if (stat(raw, &sb) == 0 || errno != ENOENT)
		snprintf(buf, n, "%s", raw);
}

nb_status nb_fashion_mnist_load(const char *dir, bool train, nb_dataset *out, char *err,
                                size_t errlen)
{
	if (!dir)
		dir = NB_FASHION_MNIST_DIR;
	char img[4096], lab[4096];
	const char *pre = train ? "train" : "t10k";
	char name[64];
	snprintf(name, sizeof name, "%s-images-idx3-ubyte", pre);
	data_path(dir, name, img, sizeof img);
	snprintf(name, sizeof name, "%s-labels-idx1-ubyte", pre);
	data_path(dir, name, lab, sizeof lab);
	return nb_idx_load(img, lab, out, err, errlen);
}
