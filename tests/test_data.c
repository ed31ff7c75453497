/* Dataset module: IDX and CIFAR-10 readers, synthetic data, transforms,
 * shuffling, batching, and the parsers' regression corpus. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz/idx_frame.h"

#ifndef NB_SOURCE_ROOT
#define NB_SOURCE_ROOT "."
#endif

/* ---- helpers ------------------------------------------------------------- */

typedef struct bytes {
	uint8_t *p;
	size_t n;
} bytes;

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* pixel k of an IDX test file: 255 at k = 0, 0 at k = 173 */
static uint8_t pix(size_t k)
{
	return (uint8_t)(k * 37 + 255);
}

static bytes idx_images(uint32_t magic, uint32_t n, uint32_t h, uint32_t w)
{
	bytes b = {.n = 16 + (size_t)n * h * w};
	b.p = malloc(b.n);
	put_be32(b.p, magic), put_be32(b.p + 4, n), put_be32(b.p + 8, h), put_be32(b.p + 12, w);
	for (size_t k = 0; k < (size_t)n * h * w; k++)
		b.p[16 + k] = pix(k);
	return b;
}

static bytes idx_labels(uint32_t magic, uint32_t n, const uint8_t *vals)
{
	bytes b = {.n = 8 + n};
	b.p = malloc(b.n);
	put_be32(b.p, magic), put_be32(b.p + 4, n);
	for (uint32_t i = 0; i < n; i++)
		b.p[8 + i] = vals ? vals[i] : (uint8_t)((i * 3) % 10);
	return b;
}

static void write_file(const char *path, const void *p, size_t n, bool gz)
{
	if (gz) {
		gzFile f = gzopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(gzwrite(f, p, (unsigned)n), (int)n);
		ck_assert_int_eq(gzclose(f), Z_OK);
	} else {
		FILE *f = fopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(p, 1, n, f), n);
		fclose(f);
	}
}

static bytes read_file(const char *path)
{
	bytes b = {0};
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	b.n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	b.p = malloc(b.n ? b.n : 1);
	ck_assert_uint_eq(fread(b.p, 1, b.n, f), b.n);
	fclose(f);
	return b;
}

/* a fresh temporary directory; rm_tmpdir removes it and its files */
static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/nb_test_data_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static void rm_tmpdir(char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char path[512];
	while (dp && (e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (dp)
		closedir(dp);
	rmdir(dir);
	free(dir);
}

static bool zeroed(const nb_dataset *d)
{
	return d->n == 0 && !d->x && !d->y && d->c == 0 && d->num_classes == 0;
}

/* A dataset of n samples of shape [c,h,w] whose values encode (sample,
 * element) and whose labels are i % classes. */
static nb_dataset toy(int64_t n, int c, int h, int w, int classes)
{
	nb_dataset d = {.n = n, .c = c, .h = h, .w = w, .num_classes = classes};
	int64_t size = (int64_t)c * h * w;
	d.x = malloc(sizeof *d.x * (size_t)(n * size));
	d.y = malloc(sizeof *d.y * (size_t)n);
	for (int64_t i = 0; i < n; i++) {
		d.y[i] = (int32_t)(i % classes);
		for (int64_t k = 0; k < size; k++)
			d.x[i * size + k] = (float)(i * 1000 + k);
	}
	return d;
}

/* ---- IDX ----------------------------------------------------------------- */

START_TEST(test_idx_roundtrip_raw_and_gz)
{
	char *dir = make_tmpdir();
	const uint32_t n = 7, h = 5, w = 6;
	bytes im = idx_images(0x803, n, h, w), lb = idx_labels(0x801, n, NULL);
	for (int gz = 0; gz < 2; gz++) {
		char ip[256], lp[256];
		snprintf(ip, sizeof ip, "%s/images%s", dir, gz ? ".gz" : "");
		snprintf(lp, sizeof lp, "%s/labels%s", dir, gz ? ".gz" : "");
		write_file(ip, im.p, im.n, gz);
		write_file(lp, lb.p, lb.n, gz);
		nb_dataset d;
		char err[512] = "";
		ck_assert_msg(nb_idx_load(ip, lp, &d, err, sizeof err) == NB_OK, "%s", err);
		ck_assert_int_eq(d.n, n);
		ck_assert_int_eq(d.c, 1);
		ck_assert_int_eq(d.h, h);
		ck_assert_int_eq(d.w, w);
		ck_assert_int_eq(d.num_classes, 10);
		ck_assert_int_eq(nb_dataset_sample_size(&d), h * w);
		bool saw0 = false, saw255 = false;
		for (size_t k = 0; k < (size_t)n * h * w; k++) {
			ck_assert_float_eq(d.x[k], (float)pix(k) / 255.0f);
			ck_assert_int_eq((int)lroundf(d.x[k] * 255), pix(k));
			saw0 |= pix(k) == 0, saw255 |= pix(k) == 255;
		}
		ck_assert(saw0 && saw255);
		for (uint32_t i = 0; i < n; i++)
			ck_assert_int_eq(d.y[i], (i * 3) % 10);
		nb_dataset_free(&d);
		ck_assert(zeroed(&d));

		/* labels 0,3,6,9,2,5,8: num_classes 0 means max + 1 */
		ck_assert_int_eq(nb_idx_load_classes(ip, lp, 0, &d, err, sizeof err), NB_OK);
		ck_assert_int_eq(d.num_classes, 10);
		nb_dataset_free(&d);
		ck_assert_int_eq(nb_idx_load_classes(ip, lp, 9, &d, err, sizeof err),
		                 NB_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(err, "label 9 of sample 3 is out of range [0, 8]"));
	}
	free(im.p), free(lb.p);
	rm_tmpdir(dir);
}
END_TEST

/* One broken file pair: the loader must fail with st, name the broken file
 * and say what (need), and leave out zeroed. */
typedef struct idx_case {
	const char *what;
	bytes im, lb;
	bool bad_labels; /* the message names the labels file, not the images */
	nb_status st;
	const char *need;
} idx_case;

START_TEST(test_idx_errors_name_file)
{
	char *dir = make_tmpdir();
	uint8_t lab3[3] = {0, 10, 1};
	idx_case cases[32];
	int nc = 0;
	bytes im, lb;
#define CASE(w, i, l, bl, s, need_)                                                                \
	cases[nc++] =                                                                              \
	    (idx_case){.what = w, .im = i, .lb = l, .bad_labels = bl, .st = s, .need = need_}

	CASE("images magic", idx_images(0x12345678, 3, 2, 2), idx_labels(0x801, 3, NULL), false,
	     NB_ERR_FORMAT, "not an IDX file: magic number 0x12345678, expected 0x00000803");
	CASE("images ndim", idx_images(0x804, 3, 2, 2), idx_labels(0x801, 3, NULL), false,
	     NB_ERR_FORMAT, "4 dimensions, expected 0x00000803");
	CASE("images type", idx_images(0xD03, 3, 2, 2), idx_labels(0x801, 3, NULL), false,
	     NB_ERR_FORMAT, "type 0x0d (float)");
	CASE("labels magic", idx_images(0x803, 3, 2, 2), idx_labels(0x803, 3, NULL), true,
	     NB_ERR_FORMAT, "3 dimensions, expected 0x00000801 (labels");
	CASE("count mismatch", idx_images(0x803, 3, 2, 2), idx_labels(0x801, 4, NULL), true,
	     NB_ERR_FORMAT, "has 3 images but");
	im = idx_images(0x803, 3, 2, 2), im.n -= 1;
	CASE("images truncated", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "truncated: expected 28 bytes (16-byte header + 3 x 2 x 2 bytes), found 27 (1 "
	     "missing)");
	im = idx_images(0x803, 3, 2, 2), im.n -= 12; /* header only */
	CASE("images no pixels", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "found 16 (12 missing)");
	im = idx_images(0x803, 3, 2, 2), im.n = 10;
	CASE("images header cut", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "truncated header: 10 bytes, expected 16");
	im = idx_images(0x803, 3, 2, 2), im.n = 0;
	CASE("images empty", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "too short for an IDX file: 0 bytes");
	im = idx_images(0x803, 3, 2, 2);
	im.p = realloc(im.p, im.n + 5), memset(im.p + im.n, 7, 5), im.n += 5;
	CASE("images trailing", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "trailing bytes: expected 28 bytes (16-byte header + 3 x 2 x 2 bytes), found 33 (5 "
	     "extra)");
	lb = idx_labels(0x801, 3, NULL), lb.n -= 2;
	CASE("labels truncated", idx_images(0x803, 3, 2, 2), lb, true, NB_ERR_FORMAT,
	     "truncated: expected 11 bytes (8-byte header + 3 bytes), found 9 (2 missing)");
	lb = idx_labels(0x801, 3, NULL);
	lb.p = realloc(lb.p, lb.n + 1), lb.p[lb.n++] = 0;
	CASE("labels trailing", idx_images(0x803, 3, 2, 2), lb, true, NB_ERR_FORMAT,
	     "found 12 (1 extra)");
	CASE("label range", idx_images(0x803, 3, 2, 2), idx_labels(0x801, 3, lab3), true,
	     NB_ERR_FORMAT, "label 10 of sample 1 is out of range [0, 9]");
	CASE("zero size", idx_images(0x803, 3, 0, 2), idx_labels(0x801, 3, NULL), false,
	     NB_ERR_FORMAT, "size 1 in the header is 0");
	im = idx_images(0x803, 1, 1, 1);
	put_be32(im.p + 4, 0xffffffffu), put_be32(im.p + 8, 0xffffffffu);
	put_be32(im.p + 12, 0xffffffffu);
	CASE("dims overflow", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "sizes 4294967295 x ... in the header exceed the limit of 2147483647 values");
	im = idx_images(0x803, 1, 1, 1);
	put_be32(im.p + 4, 65536), put_be32(im.p + 8, 32768), put_be32(im.p + 12, 1);
	CASE("dims over limit", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT,
	     "sizes 65536 x 32768 x ... in the header exceed the limit");
	im = idx_images(0x803, 1, 1, 1);
	im.p[0] = 0x1f, im.p[1] = 0x8b;
	/* zlib reads the file as gzip and fails; the parser, given the bytes,
	 * says "not an IDX file: ...; the data is gzip-compressed" */
	CASE("gzip inside", im, idx_labels(0x801, 3, NULL), false, NB_ERR_FORMAT, "gzip");
#undef CASE
	for (int i = 0; i < nc; i++) {
		idx_case *c = &cases[i];
		char ip[256], lp[256], err[512] = "";
		snprintf(ip, sizeof ip, "%s/images_%d", dir, i);
		snprintf(lp, sizeof lp, "%s/labels_%d", dir, i);
		write_file(ip, c->im.p, c->im.n, false);
		write_file(lp, c->lb.p, c->lb.n, false);
		nb_dataset d = {.n = 99};
		nb_status st = nb_idx_load(ip, lp, &d, err, sizeof err);
		ck_assert_msg(st == c->st, "%s: status %s, expected %s (%s)", c->what,
		              nb_status_string(st), nb_status_string(c->st), err);
		ck_assert_msg(zeroed(&d), "%s: output not zeroed", c->what);
		const char *file = c->bad_labels ? lp : ip;
		ck_assert_msg(strstr(err, file) != NULL, "%s: message does not name %s: %s",
		              c->what, file, err);
		ck_assert_msg(strstr(err, c->need) != NULL, "%s: message lacks \"%s\": %s", c->what,
		              c->need, err);
		/* and the same from memory, with the generic names */
		st = nb_idx_parse(c->im.p, c->im.n, c->lb.p, c->lb.n, 10, &d, err, sizeof err);
		ck_assert_int_eq(st, c->st);
		ck_assert_ptr_nonnull(strstr(err, c->bad_labels ? "labels" : "images"));
		ck_assert_ptr_nonnull(strstr(err, c->need));
		free(c->im.p), free(c->lb.p);
	}
	rm_tmpdir(dir);
}
END_TEST

START_TEST(test_idx_io_errors)
{
	char *dir = make_tmpdir();
	char ip[256], lp[256], err[512] = "";
	nb_dataset d;
	snprintf(ip, sizeof ip, "%s/no-such-images", dir);
	snprintf(lp, sizeof lp, "%s/no-such-labels", dir);
	ck_assert_int_eq(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err, ip));
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
	ck_assert(zeroed(&d));

	/* a gzip file cut in the middle of the compressed stream */
	bytes im = idx_images(0x803, 50, 10, 10), lb = idx_labels(0x801, 50, NULL);
	snprintf(ip, sizeof ip, "%s/images.gz", dir);
	snprintf(lp, sizeof lp, "%s/labels.gz", dir);
	write_file(ip, im.p, im.n, true);
	write_file(lp, lb.p, lb.n, true);
	ck_assert_int_eq(nb_idx_load(ip, lp, &d, err, sizeof err), NB_OK);
	nb_dataset_free(&d);
	bytes gz = read_file(ip);
	write_file(ip, gz.p, gz.n / 2, false);
	ck_assert_int_eq(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_msg(strstr(err, ip) && strstr(err, "gzip"), "%s", err);
	/* corrupt compressed bytes (past the 10-byte gzip header) */
	for (size_t k = 12; k < gz.n - 8; k++)
		gz.p[k] ^= 0x55;
	write_file(ip, gz.p, gz.n, false);
	ck_assert_int_eq(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_msg(strstr(err, ip) && strstr(err, "gzip"), "%s", err);
	ck_assert(zeroed(&d));

	/* NULL arguments, and err may be NULL */
	ck_assert_int_eq(nb_idx_load(NULL, lp, &d, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(nb_idx_load(ip, lp, NULL, err, sizeof err), NB_ERR_ARG);
	ck_assert_int_eq(nb_idx_parse(NULL, 5, lb.p, lb.n, 10, &d, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(nb_idx_parse(im.p, im.n, lb.p, lb.n, 257, &d, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(nb_idx_parse(im.p, im.n, lb.p, lb.n, 10, &d, NULL, 0), NB_OK);
	nb_dataset_free(&d);
	/* a message longer than err is cut, not overrun */
	char small[8];
	memset(small, 'z', sizeof small);
	ck_assert_int_eq(nb_idx_parse(lb.p, lb.n, lb.p, lb.n, 10, &d, small, 6), NB_ERR_FORMAT);
	ck_assert_int_eq(strlen(small), 5);
	ck_assert_int_eq(small[6], 'z');
	free(im.p), free(lb.p), free(gz.p);
	rm_tmpdir(dir);
}
END_TEST

START_TEST(test_fashion_mnist_dir)
{
	/* the loader's file names and the raw-file fallback, on a made-up dir */
	char *dir = make_tmpdir();
	bytes im = idx_images(0x803, 4, 28, 28), lb = idx_labels(0x801, 4, NULL);
	char p[256], err[512] = "";
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
	write_file(p, im.p, im.n, true);
	snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir); /* gunzipped */
	write_file(p, lb.p, lb.n, false);
	nb_dataset d;
	ck_assert_msg(nb_fashion_mnist_load(dir, true, &d, err, sizeof err) == NB_OK, "%s", err);
	ck_assert_int_eq(d.n, 4);
	ck_assert_int_eq(d.h * d.w, 784);
	nb_dataset_free(&d);
	ck_assert_int_eq(nb_fashion_mnist_load(dir, false, &d, err, sizeof err), NB_ERR_IO);
	ck_assert_msg(strstr(err, "t10k-images-idx3-ubyte.gz"), "%s", err);
	free(im.p), free(lb.p);
	rm_tmpdir(dir);
}
END_TEST

/* A test that must fail, not hang, if a reader blocks: SIGALRM ends the
 * process after this many seconds (Check's timeout does not apply when
 * CK_FORK=no). */
#define HANG_GUARD 30

static void check_err(nb_status st, nb_status want, const char *err, const char *file,
                      const char *need)
{
	ck_assert_msg(st == want, "status %s, expected %s (%s)", nb_status_string(st),
	              nb_status_string(want), err);
	ck_assert_msg(strstr(err, file), "message does not name %s: %s", file, err);
	ck_assert_msg(strstr(err, need), "message lacks \"%s\": %s", need, err);
	/* the reason once */
	const char *at = strstr(err, need);
	ck_assert_msg(!strstr(at + 1, need), "\"%s\" twice: %s", need, err);
}

START_TEST(test_special_files_refused)
{
	alarm(HANG_GUARD);
	char *dir = make_tmpdir();
	char ip[256], lp[256], cp[256], err[512] = "";
	bytes im = idx_images(0x803, 4, 28, 28), lb = idx_labels(0x801, 4, NULL);
	snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte", dir);
	snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte", dir);
	write_file(lp, lb.p, lb.n, false);
	nb_dataset d = {.n = 99};

	/* a FIFO nobody writes to: refused at once, for each reader */
	ck_assert_int_eq(mkfifo(ip, 0600), 0);
	check_err(nb_fashion_mnist_load(dir, true, &d, err, sizeof err), NB_ERR_IO, err, ip,
	          "not a regular file (a FIFO)");
	ck_assert(zeroed(&d));
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_IO, err, ip,
	          "not a regular file (a FIFO)");
	check_err(nb_idx_load(lp, ip, &d, err, sizeof err), NB_ERR_FORMAT, err, lp,
	          "magic number"); /* the images file is checked first */
	snprintf(cp, sizeof cp, "%s/data_batch_1.bin", dir);
	ck_assert_int_eq(mkfifo(cp, 0600), 0);
	check_err(nb_cifar10_load_file(cp, &d, err, sizeof err), NB_ERR_IO, err, cp,
	          "not a regular file (a FIFO)");
	check_err(nb_cifar10_load(dir, true, &d, err, sizeof err), NB_ERR_IO, err, cp,
	          "not a regular file (a FIFO)");
	ck_assert(zeroed(&d));
	unlink(ip), unlink(cp);

	/* a link to /dev/zero, endless zeros: refused before reading any */
	ck_assert_int_eq(symlink("/dev/zero", ip), 0);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_IO, err, ip,
	          "not a regular file (a character device)");
	ck_assert_int_eq(symlink("/dev/zero", cp), 0);
	check_err(nb_cifar10_load_file(cp, &d, err, sizeof err), NB_ERR_IO, err, cp,
	          "not a regular file (a character device)");
	unlink(ip), unlink(cp);

	/* a directory */
	check_err(nb_cifar10_load_file(dir, &d, err, sizeof err), NB_ERR_IO, err, dir,
	          "not a regular file (a directory)");
	ck_assert(zeroed(&d));
	free(im.p), free(lb.p);
	rm_tmpdir(dir);
	alarm(0);
}
END_TEST

/* The reason a file cannot be opened is the real one (strerror of the
 * error), for the file that exists, not "No such file" for another name. */
START_TEST(test_open_errors_name_reason)
{
	char *dir = make_tmpdir();
	char ip[256], lp[256], err[512] = "";
	bytes lb = idx_labels(0x801, 4, NULL);
	snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte", dir);
	snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte", dir);
	write_file(lp, lb.p, lb.n, false);
	nb_dataset d;
	/* a loop of links: the unreadable raw file is the one meant */
	ck_assert_int_eq(symlink("train-images-idx3-ubyte", ip), 0);
	check_err(nb_fashion_mnist_load(dir, true, &d, err, sizeof err), NB_ERR_IO, err, ip,
	          strerror(ELOOP));
	ck_assert_msg(!strstr(err, ".gz"), "%s", err);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_IO, err, ip, strerror(ELOOP));
	unlink(ip);
	/* permissions (root reads anything: only checked for other users) */
	bytes im = idx_images(0x803, 4, 28, 28);
	write_file(ip, im.p, im.n, false);
	ck_assert_int_eq(chmod(ip, 0), 0);
	if (geteuid() != 0) {
		check_err(nb_fashion_mnist_load(dir, true, &d, err, sizeof err), NB_ERR_IO, err, ip,
		          strerror(EACCES));
		check_err(nb_cifar10_load_file(ip, &d, err, sizeof err), NB_ERR_IO, err, ip,
		          strerror(EACCES));
	}
	/* a path through a file */
	char bad[300];
	snprintf(bad, sizeof bad, "%s/x", lp);
	check_err(nb_idx_load(bad, lp, &d, err, sizeof err), NB_ERR_IO, err, bad,
	          strerror(ENOTDIR));
	check_err(nb_cifar10_load_file(bad, &d, err, sizeof err), NB_ERR_IO, err, bad,
	          strerror(ENOTDIR));
	free(im.p), free(lb.p);
	rm_tmpdir(dir);
}
END_TEST

/* `nabla train` as typed, bounded by timeout(1) should a reader block;
 * returns the exit status with stdout and stderr in out */
static int run_nabla(const char *args, char *out, size_t n)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "timeout %d %s %s 2>&1", HANG_GUARD, NB_NABLA_EXE, args);
	return nb_test_popen_buf(cmd, out, n);
}

START_TEST(test_cli_data_files)
{
	char *dir = make_tmpdir();
	char p[256], args[512], out[4096], want[512];
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	snprintf(args, sizeof args, "train --model mlp --epochs 1 --data %s", dir);
	ck_assert_msg(run_nabla(args, out, sizeof out) == 1, "%s", out);
	snprintf(want, sizeof want, "nabla train: %s: not a regular file (a FIFO)\n", p);
	const char *at = strstr(out, want);
	ck_assert_msg(at && !strstr(at + strlen(want), "FIFO"), "%s", out);
	unlink(p);
	snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
	ck_assert_int_eq(symlink("/dev/zero", p), 0);
	snprintf(args, sizeof args, "train --model resnet20 --epochs 1 --data %s", dir);
	ck_assert_msg(run_nabla(args, out, sizeof out) == 1, "%s", out);
	snprintf(want, sizeof want, "nabla train: %s: not a regular file (a character device)\n",
	         p);
	ck_assert_msg(strstr(out, want), "%s", out);
	unlink(p);
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
	ck_assert_int_eq(symlink("train-images-idx3-ubyte", p), 0);
	snprintf(args, sizeof args, "train --model mlp --epochs 1 --data %s", dir);
	ck_assert_msg(run_nabla(args, out, sizeof out) == 1, "%s", out);
	snprintf(want, sizeof want, "nabla train: %s: cannot open: %s\n", p, strerror(ELOOP));
	ck_assert_msg(strstr(out, want), "%s", out);
	rm_tmpdir(dir);
}
END_TEST

static bytes cifar_bytes(int records, int label0);

/* gzip bytes of p[0..n) in memory */
static bytes gzip_bytes(const void *p, size_t n)
{
	bytes b = {.n = compressBound((uLong)n) + 64};
	b.p = malloc(b.n);
	z_stream z = {0};
	ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)p, z.avail_in = (uInt)n;
	z.next_out = b.p, z.avail_out = (uInt)b.n;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	b.n = z.total_out;
	deflateEnd(&z);
	return b;
}

static void append(bytes *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->n + n);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

START_TEST(test_gzip_bounds)
{
	char *dir = make_tmpdir();
	char ip[256], lp[256], cp[256], err[512] = "";
	snprintf(ip, sizeof ip, "%s/images.gz", dir);
	snprintf(lp, sizeof lp, "%s/labels.gz", dir);
	snprintf(cp, sizeof cp, "%s/data.bin.gz", dir);
	bytes im = idx_images(0x803, 4, 28, 28), lb = idx_labels(0x801, 4, NULL);
	bytes lz = gzip_bytes(lb.p, lb.n);
	write_file(lp, lz.p, lz.n, false);
	nb_dataset d;

	/* trailing bytes after the gzip data are refused, not ignored */
	bytes gz = gzip_bytes(im.p, im.n);
	append(&gz, "garbage", 7);
	write_file(ip, gz.p, gz.n, false);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "7 bytes of trailing data after the end of the gzip data");
	ck_assert(zeroed(&d));
	/* zeros too (gzip(1) warns "trailing zero ignored") */
	gz.n -= 7;
	append(&gz, "\0\0\0\0", 4);
	write_file(ip, gz.p, gz.n, false);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "4 bytes of trailing data");
	/* but another gzip member continues the data (cat a.gz b.gz) */
	free(gz.p);
	gz = gzip_bytes(im.p, 100);
	bytes rest = gzip_bytes(im.p + 100, im.n - 100);
	append(&gz, rest.p, rest.n);
	write_file(ip, gz.p, gz.n, false);
	ck_assert_msg(nb_idx_load(ip, lp, &d, err, sizeof err) == NB_OK, "%s", err);
	ck_assert_int_eq(d.n, 4);
	ck_assert_float_eq(d.x[783 * 4 - 1], pix(783 * 4 - 1) / 255.0f);
	nb_dataset_free(&d);
	free(rest.p), free(gz.p);

	/* the same for CIFAR files */
	bytes cb = cifar_bytes(2, 0);
	gz = gzip_bytes(cb.p, cb.n);
	append(&gz, "x", 1);
	write_file(cp, gz.p, gz.n, false);
	check_err(nb_cifar10_load_file(cp, &d, err, sizeof err), NB_ERR_FORMAT, err, cp,
	          "1 byte of trailing data after the end of the gzip data");
	free(gz.p), free(cb.p);

	/* The header is checked before the rest is read: sizes over the
	 * limit fail as such even though the compressed stream is cut short
	 * further on (reading on would say "bad gzip data"). */
	size_t big = (size_t)1 << 22;
	uint8_t *bomb = calloc(1, big);
	put_be32(bomb, 0x803), put_be32(bomb + 4, 65536), put_be32(bomb + 8, 32768);
	put_be32(bomb + 12, 1);
	gz = gzip_bytes(bomb, big);
	write_file(ip, gz.p, gz.n / 2, false);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "sizes 65536 x 32768 x ... in the header exceed the limit");
	free(gz.p);
	/* A valid header, then far more data than it announces: reading stops
	 * past the announced size (the excess is counted, not kept). */
	put_be32(bomb + 4, 4), put_be32(bomb + 8, 28), put_be32(bomb + 12, 28);
	gz = gzip_bytes(bomb, big);
	write_file(ip, gz.p, gz.n, false);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "trailing bytes: expected 3152 bytes (16-byte header + 4 x 28 x 28 bytes), "
	          "found more than 1051728 (over 1048576 extra)");
	ck_assert(zeroed(&d));
	/* with fewer extra bytes, the exact count */
	write_file(ip, bomb, 3152 + 5, true);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "found 3157 (5 extra)");
	/* a compressed file announcing more than it holds: the buffer grows
	 * with the data, and the shortfall is reported */
	put_be32(bomb + 4, 60000);
	write_file(ip, bomb, 4096, true);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "truncated: expected 47040016 bytes (16-byte header + 60000 x 28 x 28 "
	          "bytes), found 4096 (47035920 missing)");
	/* and one larger than the first buffer loads whole */
	bytes big_im = idx_images(0x803, 3000, 28, 28), big_lb = idx_labels(0x801, 3000, NULL);
	write_file(ip, big_im.p, big_im.n, true);
	write_file(lp, big_lb.p, big_lb.n, true);
	ck_assert_msg(nb_idx_load(ip, lp, &d, err, sizeof err) == NB_OK, "%s", err);
	ck_assert_int_eq(d.n, 3000);
	for (size_t k = 0; k < 3000 * 784; k += 9973)
		ck_assert_float_eq(d.x[k], pix(k) / 255.0f);
	ck_assert_float_eq(d.x[3000 * 784 - 1], pix(3000 * 784 - 1) / 255.0f);
	nb_dataset_free(&d);
	free(big_im.p), free(big_lb.p);
	write_file(lp, lz.p, lz.n, false);
	/* and an uncompressed file announcing more than it holds is refused by
	 * its size before anything is allocated */
	put_be32(bomb + 4, 60000);
	write_file(ip, bomb, 4096, false);
	check_err(nb_idx_load(ip, lp, &d, err, sizeof err), NB_ERR_FORMAT, err, ip,
	          "truncated: expected 47040016 bytes (16-byte header + 60000 x 28 x 28 "
	          "bytes), found 4096 (47035920 missing)");
	free(gz.p), free(bomb), free(im.p), free(lb.p), free(lz.p);
	rm_tmpdir(dir);
}
END_TEST

START_TEST(test_fashion_mnist_real)
{
	char p[512];
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", NB_FASHION_MNIST_DIR);
	if (access(p, R_OK) != 0) {
		fprintf(stderr,
		        "test_fashion_mnist_real: skipped, %s not found "
		        "(apt-get install dataset-fashion-mnist)\n",
		        p);
		return;
	}
	/* the first labels of each file, read off the files with zcat | xxd */
	const int first[2][4] = {{9, 0, 0, 3}, {9, 2, 1, 1}};
	for (int train = 1; train >= 0; train--) {
		nb_dataset d;
		char err[512] = "";
		ck_assert_msg(nb_fashion_mnist_load(NULL, train, &d, err, sizeof err) == NB_OK,
		              "%s", err);
		int64_t n = train ? 60000 : 10000;
		ck_assert_int_eq(d.n, n);
		ck_assert_int_eq(d.c, 1);
		ck_assert_int_eq(d.h, 28);
		ck_assert_int_eq(d.w, 28);
		ck_assert_int_eq(d.num_classes, 10);
		/* Fashion-MNIST is balanced: 6000 / 1000 of each class */
		int64_t count[10] = {0};
		for (int64_t i = 0; i < n; i++) {
			ck_assert(d.y[i] >= 0 && d.y[i] <= 9);
			count[d.y[i]]++;
		}
		for (int k = 0; k < 10; k++)
			ck_assert_int_eq(count[k], n / 10);
		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(d.y[i], first[!train][i]);
		float lo = 1, hi = 0;
		for (int64_t k = 0; k < n * 784; k++) {
			lo = d.x[k] < lo ? d.x[k] : lo;
			hi = d.x[k] > hi ? d.x[k] : hi;
		}
		ck_assert_float_eq(lo, 0.0f);
		ck_assert_float_eq(hi, 1.0f);
		if (train) {
			/* the widely quoted normalisation constants of Fashion-MNIST,
			 * to the four decimals they are quoted with */
			double mean, std;
			ck_assert_int_eq(nb_dataset_channel_stats(&d, &mean, &std), NB_OK);
			ck_near(mean, 0.2860, 5e-5);
			ck_near(std, 0.3530, 5e-5);
		}
		nb_dataset_free(&d);
	}
}
END_TEST

/* ---- CIFAR-10 ------------------------------------------------------------ */

static bytes cifar_bytes(int records, int label0)
{
	bytes b = {.n = (size_t)records * NB_CIFAR10_RECORD};
	b.p = malloc(b.n);
	for (int r = 0; r < records; r++) {
		uint8_t *rec = b.p + (size_t)r * NB_CIFAR10_RECORD;
		rec[0] = (uint8_t)((label0 + r) % 10);
		for (int k = 0; k < 3072; k++)
			rec[1 + k] = (uint8_t)(k * 7 + r * 13 + label0);
	}
	return b;
}

START_TEST(test_cifar_roundtrip)
{
	char *dir = make_tmpdir();
	char p[256], err[512] = "";
	bytes b = cifar_bytes(3, 4);
	snprintf(p, sizeof p, "%s/one.bin", dir);
	write_file(p, b.p, b.n, false);
	nb_dataset d;
	ck_assert_msg(nb_cifar10_load_file(p, &d, err, sizeof err) == NB_OK, "%s", err);
	ck_assert_int_eq(d.n, 3);
	ck_assert_int_eq(d.c, 3);
	ck_assert_int_eq(d.h, 32);
	ck_assert_int_eq(d.w, 32);
	ck_assert_int_eq(d.num_classes, 10);
	for (int r = 0; r < 3; r++) {
		ck_assert_int_eq(d.y[r], 4 + r);
		/* channel-major: byte 1 + ch*1024 + row*32 + col is x[ch][row][col] */
		for (int ch = 0; ch < 3; ch++)
			for (int row = 0; row < 32; row += 7)
				for (int col = 0; col < 32; col += 5) {
					uint8_t v = b.p[r * NB_CIFAR10_RECORD + 1 + ch * 1024 +
					                row * 32 + col];
					ck_assert_float_eq(
					    d.x[((r * 3 + ch) * 32 + row) * 32 + col], v / 255.0f);
				}
	}
	nb_dataset_free(&d);

	/* the directory loader: five training batches in order, one test batch */
	for (int f = 1; f <= 5; f++) {
		bytes bf = cifar_bytes(f, f); /* batch f holds f records */
		snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, f);
		write_file(p, bf.p, bf.n, f == 3); /* gzip works too */
		free(bf.p);
	}
	ck_assert_int_eq(nb_cifar10_load(dir, false, &d, err, sizeof err), NB_ERR_IO);
	ck_assert_msg(strstr(err, "test_batch.bin"), "%s", err);
	snprintf(p, sizeof p, "%s/test_batch.bin", dir);
	write_file(p, b.p, b.n, false);
	ck_assert_msg(nb_cifar10_load(dir, true, &d, err, sizeof err) == NB_OK, "%s", err);
	ck_assert_int_eq(d.n, 1 + 2 + 3 + 4 + 5);
	for (int f = 1, i = 0; f <= 5; f++)
		for (int r = 0; r < f; r++, i++) {
			ck_assert_int_eq(d.y[i], (f + r) % 10);
			ck_assert_float_eq(d.x[(int64_t)i * 3072 + 100],
			                   (uint8_t)(100 * 7 + r * 13 + f) / 255.0f);
		}
	nb_dataset_free(&d);
	ck_assert_int_eq(nb_cifar10_load(dir, false, &d, err, sizeof err), NB_OK);
	ck_assert_int_eq(d.n, 3);
	nb_dataset_free(&d);
	free(b.p);
	rm_tmpdir(dir);
}
END_TEST

START_TEST(test_cifar_errors)
{
	char *dir = make_tmpdir();
	char p[256], err[512] = "";
	nb_dataset d;
	bytes b = cifar_bytes(2, 0);
	snprintf(p, sizeof p, "%s/data_batch.bin", dir);
	struct {
		size_t len;
		const char *need;
	} sizes[] = {
	    {0, "0 bytes is not a positive multiple of the 3073-byte"},
	    {3072, "(0 whole records and 3072 bytes left over)"},
	    {3074, "3074 bytes is not a positive multiple"},
	    {6145, "(1 whole records and 3072 bytes left over)"},
	};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		write_file(p, b.p, sizes[i].len, false);
		ck_assert_int_eq(nb_cifar10_load_file(p, &d, err, sizeof err), NB_ERR_FORMAT);
		ck_assert_msg(strstr(err, p) && strstr(err, sizes[i].need), "%s", err);
		ck_assert(zeroed(&d));
	}
	b.p[NB_CIFAR10_RECORD] = 10;
	write_file(p, b.p, b.n, false);
	ck_assert_int_eq(nb_cifar10_load_file(p, &d, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_msg(strstr(err, "record 1 (byte offset 3073) has label 10, expected 0..9"), "%s",
	              err);
	ck_assert_int_eq(nb_cifar10_parse(b.p, b.n, &d, err, sizeof err), NB_ERR_FORMAT);
	ck_assert_msg(strstr(err, "buffer: record 1"), "%s", err);
	snprintf(p, sizeof p, "%s/missing.bin", dir);
	ck_assert_int_eq(nb_cifar10_load_file(p, &d, err, sizeof err), NB_ERR_IO);
	ck_assert_msg(strstr(err, p), "%s", err);
	ck_assert_int_eq(nb_cifar10_load_file(NULL, &d, err, sizeof err), NB_ERR_ARG);
	ck_assert_int_eq(nb_cifar10_parse(NULL, 3, &d, err, sizeof err), NB_ERR_ARG);
	free(b.p);
	rm_tmpdir(dir);
}
END_TEST

/* ---- synthetic CIFAR ----------------------------------------------------- */

START_TEST(test_synthetic_deterministic)
{
	nb_dataset a, b, c, pre;
	ck_assert_int_eq(nb_synthetic_cifar(200, 42, &a), NB_OK);
	ck_assert_int_eq(nb_synthetic_cifar(200, 42, &b), NB_OK);
	ck_assert_int_eq(nb_synthetic_cifar(200, 43, &c), NB_OK);
	ck_assert_int_eq(nb_synthetic_cifar(50, 42, &pre), NB_OK);
	ck_assert_int_eq(a.n, 200);
	ck_assert_int_eq(a.c, 3);
	ck_assert_int_eq(a.h, 32);
	ck_assert_int_eq(a.w, 32);
	ck_assert_int_eq(a.num_classes, 10);
	size_t xs = sizeof(float) * 200 * 3072;
	ck_assert(memcmp(a.x, b.x, xs) == 0);
	ck_assert(memcmp(a.y, b.y, sizeof(int32_t) * 200) == 0);
	ck_assert(memcmp(a.x, c.x, xs) != 0);
	/* sample i does not depend on n */
	ck_assert(memcmp(a.x, pre.x, sizeof(float) * 50 * 3072) == 0);
	ck_assert(memcmp(a.y, pre.y, sizeof(int32_t) * 50) == 0);
	int count[10] = {0};
	for (int64_t i = 0; i < a.n; i++) {
		ck_assert(a.y[i] >= 0 && a.y[i] < 10);
		count[a.y[i]]++;
	}
	for (int k = 0; k < 10; k++)
		ck_assert_msg(count[k] >= 5, "class %d has %d of 200 samples", k, count[k]);
	for (int64_t k = 0; k < a.n * 3072; k++)
		ck_assert(a.x[k] >= 0.0f && a.x[k] <= 1.0f);
	nb_dataset_free(&pre);
	ck_assert_int_eq(nb_synthetic_cifar(0, 1, &pre), NB_ERR_ARG);
	ck_assert(zeroed(&pre));
	nb_dataset_free(&a), nb_dataset_free(&b), nb_dataset_free(&c);
}
END_TEST

/* Fraction of test samples whose nearest class mean (of train) is right. */
static double nearest_centroid(const nb_dataset *tr, const nb_dataset *te)
{
	static double mean[10][3072];
	int count[10] = {0};
	memset(mean, 0, sizeof mean);
	for (int64_t i = 0; i < tr->n; i++) {
		count[tr->y[i]]++;
		for (int k = 0; k < 3072; k++)
			mean[tr->y[i]][k] += tr->x[i * 3072 + k];
	}
	for (int c = 0; c < 10; c++)
		for (int k = 0; k < 3072; k++)
			mean[c][k] /= count[c];
	int64_t right = 0;
	for (int64_t i = 0; i < te->n; i++) {
		int best = 0;
		double bd = INFINITY;
		for (int c = 0; c < 10; c++) {
			double dd = 0;
			for (int k = 0; k < 3072; k++) {
				double e = te->x[i * 3072 + k] - mean[c][k];
				dd += e * e;
			}
			if (dd < bd)
				bd = dd, best = c;
		}
		right += best == te->y[i];
	}
	return (double)right / (double)te->n;
}

/* Which member of the tint pair (k, k + 5) an image is, from its stripes:
 * class k's stripes vary along u = (cos t, sin t) in (row, col), t = k pi/10,
 * and class k + 5's along the perpendicular, so compare the energy of the
 * image gradient (finite differences of the channel sum) along the two. */
static int orientation_class(const float *x, int k)
{
	double t = k * M_PI / 10, cu = cos(t), su = sin(t), eu = 0, ep = 0;
	for (int r = 0; r < 31; r++)
		for (int q = 0; q < 31; q++) {
			double v = 0, down = 0, right = 0;
			for (int c = 0; c < 3; c++) {
				v += x[(c * 32 + r) * 32 + q];
				down += x[(c * 32 + r + 1) * 32 + q];
				right += x[(c * 32 + r) * 32 + q + 1];
			}
			double gu = cu * (down - v) + su * (right - v);
			double gp = -su * (down - v) + cu * (right - v);
			eu += gu * gu, ep += gp * gp;
		}
	return eu > ep ? k : k + 5;
}

START_TEST(test_synthetic_learnable)
{
	nb_dataset tr, te;
	ck_assert_int_eq(nb_synthetic_cifar(1000, 1, &tr), NB_OK);
	ck_assert_int_eq(nb_synthetic_cifar(400, 2, &te), NB_OK);
	/* class means tell the tint pairs apart but not the pair members: about
	 * half right, far above chance (0.1) and far below perfect */
	double acc = nearest_centroid(&tr, &te);
	ck_assert_msg(acc > 0.4 && acc < 0.65, "nearest-centroid accuracy %g", acc);
	/* the pair member is in the stripe orientation: the tint pair from the
	 * nearest centroid plus the orientation is right nearly always, which a
	 * convnet can learn */
	int64_t right_pair = 0, right = 0;
	for (int64_t i = 0; i < te.n; i++) {
		int k = te.y[i];
		right_pair += orientation_class(te.x + i * 3072, k % 5) == k;
		right++;
	}
	ck_assert_msg(right_pair >= right * 95 / 100, "orientation right for %lld of %lld",
	              (long long)right_pair, (long long)right);
	nb_dataset_free(&tr), nb_dataset_free(&te);
}
END_TEST

/* ---- transforms ---------------------------------------------------------- */

START_TEST(test_onehot)
{
	int32_t y[4] = {2, 0, 1, 2};
	float out[12];
	ck_assert_int_eq(nb_labels_one_hot(y, 4, 3, out), NB_OK);
	const float want[12] = {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1};
	for (int i = 0; i < 12; i++)
		ck_assert_float_eq(out[i], want[i]);
	y[3] = 3;
	for (int i = 0; i < 12; i++)
		out[i] = 7;
	ck_assert_int_eq(nb_labels_one_hot(y, 4, 3, out), NB_ERR_VALUE);
	for (int i = 0; i < 12; i++)
		ck_assert_float_eq(out[i], 7);
	y[3] = -1;
	ck_assert_int_eq(nb_labels_one_hot(y, 4, 3, out), NB_ERR_VALUE);
	ck_assert_int_eq(nb_labels_one_hot(y, 4, 0, out), NB_ERR_ARG);
	ck_assert_int_eq(nb_labels_one_hot(NULL, 4, 3, out), NB_ERR_ARG);
	ck_assert_int_eq(nb_labels_one_hot(NULL, 0, 3, NULL), NB_OK);
	/* the former name still works */
	y[3] = 2;
	ck_assert_int_eq(nb_onehot(y, 4, 3, out), NB_OK);
	for (int i = 0; i < 12; i++)
		ck_assert_float_eq(out[i], want[i]);
}
END_TEST

START_TEST(test_select_classes)
{
	nb_dataset d = toy(12, 1, 1, 2, 4), s;
	int keep[2] = {3, 1};
	ck_assert_int_eq(nb_dataset_select_classes(&d, keep, 2, &s), NB_OK);
	ck_assert_int_eq(s.n, 6);
	ck_assert_int_eq(s.num_classes, 2);
	/* samples 1,3,5,7,9,11 in order; label 3 -> 0, label 1 -> 1 */
	const int64_t want[6] = {1, 3, 5, 7, 9, 11};
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(s.y[i], d.y[want[i]] == 3 ? 0 : 1);
		ck_assert_float_eq(s.x[2 * i], want[i] * 1000.0f);
		ck_assert_float_eq(s.x[2 * i + 1], want[i] * 1000.0f + 1);
	}
	nb_dataset_free(&s);
	int dup[2] = {1, 1}, out_of_range[1] = {4}, neg[1] = {-1};
	ck_assert_int_eq(nb_dataset_select_classes(&d, dup, 2, &s), NB_ERR_ARG);
	ck_assert(zeroed(&s));
	ck_assert_int_eq(nb_dataset_select_classes(&d, out_of_range, 1, &s), NB_ERR_ARG);
	ck_assert_int_eq(nb_dataset_select_classes(&d, neg, 1, &s), NB_ERR_ARG);
	ck_assert_int_eq(nb_dataset_select_classes(&d, keep, 0, &s), NB_ERR_ARG);
	ck_assert_int_eq(nb_dataset_select_classes(&d, keep, 2, &d), NB_ERR_ARG);
	nb_dataset_free(&d);
}
END_TEST

START_TEST(test_slice)
{
	nb_dataset d = toy(10, 2, 1, 1, 3), s;
	ck_assert_int_eq(nb_dataset_slice(&d, 4, 3, &s), NB_OK);
	ck_assert_int_eq(s.n, 3);
	ck_assert_int_eq(s.num_classes, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(s.y[i], (4 + i) % 3);
		ck_assert_float_eq(s.x[2 * i + 1], (4 + i) * 1000.0f + 1);
	}
	nb_dataset_free(&s);
	ck_assert_int_eq(nb_dataset_slice(&d, 10, 0, &s), NB_OK);
	ck_assert_int_eq(s.n, 0);
	nb_dataset_free(&s);
	ck_assert_int_eq(nb_dataset_slice(&d, 8, 3, &s), NB_ERR_ARG);
	ck_assert_int_eq(nb_dataset_slice(&d, -1, 3, &s), NB_ERR_ARG);
	nb_dataset_free(&d);
}
END_TEST

START_TEST(test_standardize_exact)
{
	/* 2 samples of [2 channels, 1x2]: channel 0 holds 0,1,2,3 (mean 1.5,
	 * variance (2.25+0.25+0.25+2.25)/4 = 1.25), channel 1 is constant 5 */
	nb_dataset d = {.n = 2, .c = 2, .h = 1, .w = 2, .num_classes = 1};
	float x[8] = {0, 1, 5, 5, 2, 3, 5, 5};
	int32_t y[2] = {0, 0};
	d.x = x, d.y = y;
	double mean[2], std[2];
	ck_assert_int_eq(nb_dataset_standardize(&d, mean, std), NB_OK);
	ck_near(mean[0], 1.5, 0);
	ck_near(std[0], sqrt(1.25), 0);
	ck_near(mean[1], 5, 0);
	ck_near(std[1], 0, 0);
	const double want0[4] = {-1.5, -0.5, 0.5, 1.5};
	const int at[4] = {0, 1, 4, 5};
	for (int i = 0; i < 4; i++)
		ck_near(x[at[i]], (float)(want0[i] / sqrt(1.25)), 0);
	/* the constant channel becomes 0 (std 0 is taken as 1) */
	for (int i = 2; i < 8; i += i == 3 ? 3 : 1)
		ck_near(x[i], 0, 0);
	double bad_std[2] = {1, -1};
	ck_assert_int_eq(nb_dataset_normalize(&d, mean, bad_std), NB_ERR_VALUE);
}
END_TEST

START_TEST(test_standardize_channels)
{
	nb_dataset tr, te;
	ck_assert_int_eq(nb_synthetic_cifar(300, 7, &tr), NB_OK);
	ck_assert_int_eq(nb_synthetic_cifar(100, 8, &te), NB_OK);
	double m0[3], s0[3], m[3], s[3], m1[3], s1[3];
	ck_assert_int_eq(nb_dataset_channel_stats(&tr, m0, s0), NB_OK);
	for (int c = 0; c < 3; c++)
		ck_assert(s0[c] > 0.05 && m0[c] > 0.2 && m0[c] < 0.8);
	ck_assert_int_eq(nb_dataset_standardize(&tr, m, s), NB_OK);
	for (int c = 0; c < 3; c++) {
		ck_near(m[c], m0[c], 0);
		ck_near(s[c], s0[c], 0);
	}
	ck_assert_int_eq(nb_dataset_channel_stats(&tr, m1, s1), NB_OK);
	for (int c = 0; c < 3; c++) {
		ck_near(m1[c], 0, 1e-5);
		ck_near(s1[c], 1, 1e-5);
	}
	/* test data with the training statistics: exactly the formula */
	float before = te.x[2 * 1024 + 17];
	ck_assert_int_eq(nb_dataset_normalize(&te, m, s), NB_OK);
	ck_near(te.x[2 * 1024 + 17], (float)((before - m[2]) / s[2]), 0);
	nb_dataset_free(&tr), nb_dataset_free(&te);
}
END_TEST

/* ---- shuffling ----------------------------------------------------------- */

static void assert_permutation(const int64_t *p, int64_t n)
{
	char *seen = calloc((size_t)n, 1);
	for (int64_t i = 0; i < n; i++) {
		ck_assert(p[i] >= 0 && p[i] < n);
		ck_assert_msg(!seen[p[i]], "%lld appears twice", (long long)p[i]);
		seen[p[i]] = 1;
	}
	free(seen);
}

START_TEST(test_shuffle)
{
	enum { N = 1000 };
	int64_t *a = malloc(sizeof *a * N), *b = malloc(sizeof *b * N);
	nb_permutation(a, N, 123);
	nb_permutation(b, N, 123);
	assert_permutation(a, N);
	ck_assert(memcmp(a, b, sizeof *a * N) == 0);
	nb_permutation(b, N, 124);
	ck_assert(memcmp(a, b, sizeof *a * N) != 0);
	int64_t fixed = 0;
	for (int i = 0; i < N; i++)
		fixed += a[i] == i;
	ck_assert_int_lt(fixed, 10); /* a uniform permutation fixes ~1 point */

	/* uniform over the 6 permutations of 3: each about 1000 of 6000 (sd 29) */
	int count[27] = {0};
	for (uint64_t seed = 0; seed < 6000; seed++) {
		int64_t p[3];
		nb_permutation(p, 3, seed);
		count[p[0] * 9 + p[1] * 3 + p[2]]++;
	}
	int kinds = 0;
	for (int k = 0; k < 27; k++)
		if (count[k]) {
			kinds++;
			ck_assert_msg(count[k] > 850 && count[k] < 1150, "permutation %d: %d", k,
			              count[k]);
		}
	ck_assert_int_eq(kinds, 6);

	/* the dataset is reordered by the same permutation */
	nb_dataset d = toy(N, 1, 1, 3, 7);
	ck_assert_int_eq(nb_dataset_shuffle(&d, 123), NB_OK);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(d.y[i], a[i] % 7);
		ck_assert_float_eq(d.x[3 * i + 2], a[i] * 1000.0f + 2);
	}
	nb_dataset_free(&d);
	d = toy(1, 1, 1, 1, 1);
	ck_assert_int_eq(nb_dataset_shuffle(&d, 5), NB_OK);
	ck_assert_float_eq(d.x[0], 0);
	nb_dataset_free(&d);
	free(a), free(b);
}
END_TEST

/* ---- batching ------------------------------------------------------------ */

typedef struct batch_bufs {
	float x[4 * 6], ids[4], onehot[4 * 3];
	int32_t labels[4];
	int64_t index[4];
} batch_bufs;

static nb_batch batch_of(batch_bufs *b)
{
	return (nb_batch){b->x, b->ids, b->onehot, b->labels, b->index};
}

/* One epoch; checks every row against the dataset, returns the order. */
static int run_epoch(nb_batcher *it, const nb_dataset *d, int64_t *order, int64_t *sizes,
                     int *nbatches)
{
	batch_bufs bb;
	nb_batch b = batch_of(&bb);
	int64_t m, seen = 0;
	*nbatches = 0;
	while ((m = nb_batcher_next(it, &b)) > 0) {
		sizes[(*nbatches)++] = m;
		for (int64_t i = 0; i < 4; i++) {
			if (i >= m) { /* padding of a partial batch */
				ck_assert_int_eq(bb.labels[i], -1);
				ck_assert_int_eq(bb.index[i], -1);
				ck_assert_float_eq(bb.ids[i], 0);
				for (int k = 0; k < 6; k++)
					ck_assert_float_eq(bb.x[i * 6 + k], 0);
				for (int k = 0; k < 3; k++)
					ck_assert_float_eq(bb.onehot[i * 3 + k], 0);
				continue;
			}
			int64_t j = bb.index[i];
			order[seen++] = j;
			ck_assert_int_eq(bb.labels[i], d->y[j]);
			ck_assert_float_eq(bb.ids[i], (float)d->y[j]);
			for (int k = 0; k < 3; k++)
				ck_assert_float_eq(bb.onehot[i * 3 + k], k == d->y[j]);
			ck_assert(memcmp(bb.x + i * 6, d->x + j * 6, sizeof(float) * 6) == 0);
		}
	}
	return (int)seen;
}

START_TEST(test_batcher_epochs)
{
	nb_dataset d = toy(10, 1, 2, 3, 3);
	nb_batcher *it;
	ck_assert_int_eq(nb_batcher_new(&d, (nb_batcher_opts){.batch_size = 4}, &it), NB_OK);
	ck_assert_int_eq(nb_batcher_batches_per_epoch(it), 3);
	int64_t order[10], sizes[8];
	int nb;
	/* in order: 0..9 as 4 + 4 + 2, the partial batch returned, then 0 */
	ck_assert_int_eq(run_epoch(it, &d, order, sizes, &nb), 10);
	ck_assert_int_eq(nb, 3);
	ck_assert_int_eq(sizes[0], 4);
	ck_assert_int_eq(sizes[1], 4);
	ck_assert_int_eq(sizes[2], 2);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(order[i], i);
	ck_assert_int_eq(nb_batcher_epoch(it), 1);
	nb_batcher_free(it);

	/* shuffled: each epoch a permutation, epochs differ, same seed repeats */
	nb_batcher_opts o = {.batch_size = 4, .shuffle = true, .seed = 99};
	nb_batcher *it2;
	ck_assert_int_eq(nb_batcher_new(&d, o, &it), NB_OK);
	ck_assert_int_eq(nb_batcher_new(&d, o, &it2), NB_OK);
	int64_t e0[10], e1[10], again[10];
	ck_assert_int_eq(run_epoch(it, &d, e0, sizes, &nb), 10);
	ck_assert_int_eq(sizes[2], 2);
	assert_permutation(e0, 10);
	ck_assert_int_eq(run_epoch(it, &d, e1, sizes, &nb), 10);
	assert_permutation(e1, 10);
	ck_assert(memcmp(e0, e1, sizeof e0) != 0);
	ck_assert_int_eq(run_epoch(it2, &d, again, sizes, &nb), 10);
	ck_assert(memcmp(e0, again, sizeof e0) == 0);
	nb_batcher_seek_epoch(it, 0);
	ck_assert_int_eq(run_epoch(it, &d, again, sizes, &nb), 10);
	ck_assert(memcmp(e0, again, sizeof e0) == 0);
	bool sorted = true;
	for (int i = 0; i < 10; i++)
		sorted &= e0[i] == i;
	ck_assert(!sorted);
	nb_batcher_free(it), nb_batcher_free(it2);

	/* drop_last: 4 + 4, the last 2 samples skipped (different ones each epoch) */
	o.drop_last = true;
	ck_assert_int_eq(nb_batcher_new(&d, o, &it), NB_OK);
	ck_assert_int_eq(nb_batcher_batches_per_epoch(it), 2);
	ck_assert_int_eq(run_epoch(it, &d, e1, sizes, &nb), 8);
	ck_assert_int_eq(nb, 2);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(e1[i], e0[i]); /* epoch 0's order, cut */
	nb_batcher_free(it);

	/* batch larger than the set: one partial batch */
	o = (nb_batcher_opts){.batch_size = 64};
	ck_assert_int_eq(nb_batcher_new(&d, o, &it), NB_OK);
	ck_assert_int_eq(nb_batcher_batches_per_epoch(it), 1);
	ck_assert_int_eq(nb_batcher_next(it, &(nb_batch){.labels = NULL}), 10);
	ck_assert_int_eq(nb_batcher_next(it, &(nb_batch){0}), 0);
	ck_assert_int_eq(nb_batcher_next(it, NULL), -1);
	nb_batcher_free(it);

	ck_assert_int_eq(nb_batcher_new(&d, (nb_batcher_opts){.batch_size = 0}, &it), NB_ERR_ARG);
	ck_assert_ptr_null(it);
	nb_dataset_free(&d);
}
END_TEST

/* Every sample exactly once per epoch, for many sizes, through the public
 * index output only. */
START_TEST(test_batcher_covers_all)
{
	for (int64_t n = 1; n <= 23; n++)
		for (int64_t bs = 1; bs <= 7; bs++) {
			nb_dataset d = toy(n, 1, 1, 1, 2);
			nb_batcher *it;
			nb_batcher_opts o = {.batch_size = bs, .shuffle = (n + bs) % 2, .seed = 5};
			ck_assert_int_eq(nb_batcher_new(&d, o, &it), NB_OK);
			int64_t idx[7], *seen = calloc((size_t)n, sizeof *seen);
			for (int epoch = 0; epoch < 2; epoch++) {
				int64_t m, total = 0, batches = 0;
				while ((m = nb_batcher_next(it, &(nb_batch){.index = idx})) > 0) {
					ck_assert(m == bs || (total + m == n && m < bs));
					for (int64_t i = 0; i < m; i++)
						seen[idx[i]]++;
					total += m, batches++;
				}
				ck_assert_int_eq(total, n);
				ck_assert_int_eq(batches, nb_batcher_batches_per_epoch(it));
				for (int64_t i = 0; i < n; i++)
					ck_assert_int_eq(seen[i], epoch + 1);
			}
			free(seen);
			nb_batcher_free(it);
			nb_dataset_free(&d);
		}
}
END_TEST

/* ---- the parsers' regression corpus --------------------------------------- */

typedef nb_status (*corpus_fn)(const bytes *b, int num_classes, nb_dataset *d, char *err,
                               size_t errlen);

static nb_status corpus_idx(const bytes *b, int num_classes, nb_dataset *d, char *err,
                            size_t errlen)
{
	nb_idx_frame f = nb_idx_unframe(b->p, b->n);
	return nb_idx_parse(f.images, f.images_len, f.labels, f.labels_len, num_classes, d, err,
	                    errlen);
}

static nb_status corpus_cifar(const bytes *b, int num_classes, nb_dataset *d, char *err,
                              size_t errlen)
{
	(void)num_classes;
	return nb_cifar10_parse(b->p, b->n, d, err, errlen);
}

/* The file loaders on the inputs of fuzz_idx_file and fuzz_cifar_file
 * (fuzz/fuzz_file.h): a mode byte whose bit k gzips file k, then the files,
 * written to a temporary directory. */
static char *corpus_dir;

static const char *corpus_write(const char *name, const uint8_t *p, size_t n, bool gz)
{
	static char path[2][512];
	static int k;
	k = !k;
	snprintf(path[k], sizeof path[k], "%s/%s", corpus_dir, name);
	write_file(path[k], p, n, gz);
	return path[k];
}

static nb_status corpus_idx_file(const bytes *b, int num_classes, nb_dataset *d, char *err,
                                 size_t errlen)
{
	if (b->n < 1)
		return nb_idx_parse(NULL, 0, NULL, 0, num_classes, d, err, errlen);
	nb_idx_frame f = nb_idx_unframe(b->p + 1, b->n - 1);
	const char *img = corpus_write("images", f.images, f.images_len, b->p[0] & 1);
	const char *lab = corpus_write("labels", f.labels, f.labels_len, b->p[0] & 2);
	return nb_idx_load_classes(img, lab, num_classes, d, err, errlen);
}

static nb_status corpus_cifar_file(const bytes *b, int num_classes, nb_dataset *d, char *err,
                                   size_t errlen)
{
	(void)num_classes;
	if (b->n < 1)
		return nb_cifar10_parse(NULL, 0, d, err, errlen);
	const char *path = corpus_write("data.bin", b->p + 1, b->n - 1, b->p[0] & 1);
	return nb_cifar10_load_file(path, d, err, errlen);
}

/* Every file through the parser: ok_* must load, bad_* must fail with
 * NB_ERR_FORMAT and a message, anything else (fuzzer crashers) must end in a
 * clean success or error.  A loaded dataset must be consistent. */
static void run_corpus(const char *sub, corpus_fn parse)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/tests/data/corpus/%s", NB_SOURCE_ROOT, sub);
	DIR *dp = opendir(dir);
	ck_assert_msg(dp != NULL, "no corpus at %s", dir);
	struct dirent *e;
	int files = 0, ok = 0, bad = 0;
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		bytes b = read_file(path);
		files++;
		for (int classes = 10; classes >= 0; classes -= 10) {
			char err[512] = "";
			nb_dataset d;
			nb_status st = parse(&b, classes, &d, err, sizeof err);
			ck_assert_msg(st == NB_OK || st == NB_ERR_FORMAT, "%s: %s (%s)", path,
			              nb_status_string(st), err);
			if (classes == 10 && !strncmp(e->d_name, "ok_", 3)) {
				ck_assert_msg(st == NB_OK, "%s: %s", path, err);
				ok++;
			}
			if (classes == 10 && !strncmp(e->d_name, "bad_", 4)) {
				ck_assert_msg(st == NB_ERR_FORMAT, "%s: parsed", path);
				ck_assert(strlen(err) > 10);
				bad++;
			}
			if (st != NB_OK) {
				ck_assert(zeroed(&d));
				continue;
			}
			ck_assert(d.n > 0 && d.c > 0 && d.h > 0 && d.w > 0 && d.num_classes > 0);
			for (int64_t i = 0; i < d.n; i++)
				ck_assert(d.y[i] >= 0 && d.y[i] < d.num_classes);
			for (int64_t k = 0; k < d.n * nb_dataset_sample_size(&d); k++)
				ck_assert(d.x[k] >= 0 && d.x[k] <= 1);
			nb_dataset_free(&d);
		}
		free(b.p);
	}
	closedir(dp);
	ck_assert_msg(ok >= 1 && bad >= 5, "%s: %d files, %d ok_, %d bad_", dir, files, ok, bad);
}

START_TEST(test_corpus_idx)
{
	run_corpus("idx", corpus_idx);
}
END_TEST

START_TEST(test_corpus_cifar)
{
	run_corpus("cifar", corpus_cifar);
}
END_TEST

START_TEST(test_corpus_files)
{
	corpus_dir = make_tmpdir();
	run_corpus("idx_file", corpus_idx_file);
	run_corpus("cifar_file", corpus_cifar_file);
	rm_tmpdir(corpus_dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("data");
	TCase *tc = tcase_create("data");
	tcase_add_test(tc, test_idx_roundtrip_raw_and_gz);
	tcase_add_test(tc, test_idx_errors_name_file);
	tcase_add_test(tc, test_idx_io_errors);
	tcase_add_test(tc, test_fashion_mnist_dir);
	tcase_add_test(tc, test_fashion_mnist_real);
	tcase_add_test(tc, test_special_files_refused);
	tcase_add_test(tc, test_open_errors_name_reason);
	tcase_add_test(tc, test_cli_data_files);
	tcase_add_test(tc, test_cifar_roundtrip);
	tcase_add_test(tc, test_cifar_errors);
	tcase_add_test(tc, test_gzip_bounds);
	tcase_add_test(tc, test_synthetic_deterministic);
	tcase_add_test(tc, test_synthetic_learnable);
	tcase_add_test(tc, test_onehot);
	tcase_add_test(tc, test_select_classes);
	tcase_add_test(tc, test_slice);
	tcase_add_test(tc, test_standardize_exact);
	tcase_add_test(tc, test_standardize_channels);
	tcase_add_test(tc, test_shuffle);
	tcase_add_test(tc, test_batcher_epochs);
	tcase_add_test(tc, test_batcher_covers_all);
	tcase_add_test(tc, test_corpus_idx);
	tcase_add_test(tc, test_corpus_cifar);
	tcase_add_test(tc, test_corpus_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
