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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Validates one IDX array of unsigned bytes with the magic 0x000008<ndim>. */
static nb_status idx_array_parse(const uint8_t *buf, size_t len, const char *name, int ndim,
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
	uint64_t expect = header + a->count;
	if ((uint64_t)len != expect) {
		char d[64];
		dims_str(a, d, sizeof d);
		bool shortf = (uint64_t)len < expect;
		return nb__data_err(err, errlen, NB_ERR_FORMAT,
		                    "%s: %s: expected %llu bytes (%zu-byte header + %s bytes), "
		                    "found %zu (%llu %s)",
		                    name, shortf ? "truncated" : "trailing bytes",
		                    (unsigned long long)expect, header, d, len,
		                    (unsigned long long)(shortf ? expect - len : len - expect),
		                    shortf ? "missing" : "extra");
	}
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

/* the largest valid IDX file of unsigned bytes */
#define IDX_CAP ((size_t)(16 + NB_DATA_MAX_VALUES))

nb_status nb_idx_load_classes(const char *images_path, const char *labels_path, int num_classes,
                              nb_dataset *out, char *err, size_t errlen)
{
	if (out)
		memset(out, 0, sizeof *out);
	if (!images_path || !labels_path || !out)
		return nb__data_err(err, errlen, NB_ERR_ARG, "nb_idx_load: NULL argument");
	uint8_t *img = NULL, *lab = NULL;
	size_t img_len, lab_len;
	nb_status st = nb__slurp(images_path, IDX_CAP, &img, &img_len, err, errlen);
	if (st == NB_OK)
		st = nb__slurp(labels_path, IDX_CAP, &lab, &lab_len, err, errlen);
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

/* dir/name.gz, or dir/name when only that exists */
static void data_path(const char *dir, const char *name, char *buf, size_t n)
{
	size_t dl = strlen(dir);
	const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
	snprintf(buf, n, "%s%s%s.gz", dir, sep, name);
	FILE *fp = fopen(buf, "rb");
	if (fp) {
		fclose(fp);
		return;
	}
	char raw[4096];
	snprintf(raw, sizeof raw, "%s%s%s", dir, sep, name);
	fp = fopen(raw, "rb");
	if (fp) {
		fclose(fp);
		snprintf(buf, n, "%s", raw);
	}
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
