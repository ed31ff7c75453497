/* The classifier figures: nb_plot_confusion_save and nb_plot_image_grid_save. */
#include "test_util.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64], path[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/nb_figures_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *file(const char *name)
{
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

START_TEST(test_confusion_svg)
{
	const int64_t cm[9] = {5, 1, 0, 0, 7, 2, 3, 0, 9};
	const char *names[3] = {"a<b&c", "tab\there", "ok"};
	char err[256];
	ck_assert_msg(nb_plot_confusion_save(file("cm.svg"), cm, 3, names, "t \"1\"", err,
	                                     sizeof err) == NB_OK,
	              "%s", err);
	char *s = nb_test_read_file(path);
	ck_assert_int_eq(count(s, "<rect x="), 9);
	ck_assert_ptr_nonnull(strstr(s, "<title>true 0, predicted 1: 1</title>"));
	ck_assert_ptr_nonnull(strstr(s, "<title>true 2, predicted 0: 3</title>"));
	ck_assert_ptr_nonnull(strstr(s, ">9</text>"));
	/* an empty cell has no number */
	ck_assert_ptr_null(strstr(s, ">0</text>"));
	/* each row's share correct: 5 of 6, 7 of 9, 9 of 12 */
	ck_assert_ptr_nonnull(strstr(s, ">83.3% of 6</text>"));
	ck_assert_ptr_nonnull(strstr(s, ">77.8% of 9</text>"));
	ck_assert_ptr_nonnull(strstr(s, ">75.0% of 12</text>"));
	/* the names as text: markup escaped, a control character replaced */
	ck_assert_ptr_nonnull(strstr(s, "a&lt;b&amp;c"));
	ck_assert_ptr_nonnull(strstr(s, "tab\xef\xbf\xbdhere"));
	ck_assert_ptr_nonnull(strstr(s, "t &quot;1&quot;"));
	free(s);
	/* without names: the class numbers */
	ck_assert_int_eq(nb_plot_confusion_save(file("n.svg"), cm, 3, NULL, NULL, err, sizeof err),
	                 NB_OK);
	s = nb_test_read_file(path);
	ck_assert_ptr_nonnull(strstr(s, "rotate(-45)\" font-size=\"12\">2</text>"));
	free(s);
}
END_TEST

START_TEST(test_confusion_refusals)
{
	const int64_t cm[4] = {1, -1, 0, 2};
	char err[256];
	ck_assert_int_eq(nb_plot_confusion_save(file("x.svg"), cm, 2, NULL, NULL, err, sizeof err),
	                 NB_ERR_ARG);
	ck_assert_str_eq(err, "count 1 is negative (-1)");
	ck_assert_int_eq(nb_plot_confusion_save(file("x.svg"), cm, 0, NULL, NULL, err, sizeof err),
	                 NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_confusion_save(file("x.svg"), NULL, 2, NULL, NULL, NULL, 0),
	                 NB_ERR_ARG);
	ck_assert_int_eq(nb_plot_confusion_save(file("x.svg"), cm, NB_PLOT_MAX_CLASSES + 1, NULL,
	                                        NULL, err, sizeof err),
	                 NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(err, "1 to 1000 classes, not 1001"));
	ck_assert_int_eq(access(file("x.svg"), F_OK), -1);
	const int64_t ok[1] = {3};
	ck_assert_int_eq(
	    nb_plot_confusion_save(file("no/x.svg"), ok, 1, NULL, NULL, err, sizeof err),
	    NB_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err, "no/x.svg: cannot create"));
}
END_TEST

/* the PNG of the k-th <image> of an SVG: its pixels, checked chunk by chunk */
static int png_pixels(const char *svg, int k, unsigned char *out, size_t cap, int *w, int *h,
                      int *colour)
{
	const char *p = svg;
	for (int i = 0; i <= k; i++) {
		p = strstr(p, "base64,");
		ck_assert_ptr_nonnull(p);
		p += 7;
	}
	static const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char png[1 << 16];
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (; *p != '"'; p++) {
		if (*p == '=')
			continue;
		const char *q = strchr(a, *p);
		ck_assert_ptr_nonnull(q);
		acc = acc << 6 | (uint32_t)(q - a);
		if ((bits += 6) >= 8) {
			ck_assert(n < sizeof png);
			png[n++] = (unsigned char)(acc >> (bits -= 8));
		}
	}
	ck_assert(!memcmp(png, "\x89PNG\r\n\x1a\n", 8));
	size_t at = 8;
	unsigned char idat[1 << 16];
	size_t idat_n = 0;
	for (;;) {
		uint32_t len =
		    (uint32_t)png[at] << 24 | png[at + 1] << 16 | png[at + 2] << 8 | png[at + 3];
		uint32_t crc = (uint32_t)png[at + 8 + len] << 24 | png[at + 9 + len] << 16 |
		               png[at + 10 + len] << 8 | png[at + 11 + len];
		ck_assert_uint_eq(crc, crc32(0, png + at + 4, len + 4));
		if (!memcmp(png + at + 4, "IHDR", 4)) {
			*w = png[at + 11];
			*h = png[at + 15];
			*colour = png[at + 17];
			ck_assert_int_eq(png[at + 16], 8);
		} else if (!memcmp(png + at + 4, "IDAT", 4)) {
			memcpy(idat + idat_n, png + at + 8, len);
			idat_n += len;
		} else if (!memcmp(png + at + 4, "IEND", 4)) {
			break;
		}
		at += 12 + len;
	}
	uLongf rn = (uLongf)cap;
	ck_assert_int_eq(uncompress(out, &rn, idat, idat_n), Z_OK);
	return (int)rn;
}

START_TEST(test_grid_svg)
{
	/* two 2x3 grey images: values beyond the range clamped, NaN black */
	const float x[12] = {0, 0.5f, 1, 2, -1, NAN, 0.2f, 0.4f, 0.6f, 0.8f, 1, 0};
	const char *caps[2] = {"#0: seven 90%\ntrue: seven", "#1: <b>\ntrue: one"};
	const bool wrong[2] = {false, true};
	nb_image_grid g = {.n = 2,
	                   .c = 1,
	                   .h = 2,
	                   .w = 3,
	                   .x = x,
	                   .lo = 0,
	                   .hi = 1,
	                   .captions = caps,
	                   .wrong = wrong,
	                   .title = "grid"};
	char err[256];
	ck_assert_msg(nb_plot_image_grid_save(file("g.svg"), &g, err, sizeof err) == NB_OK, "%s",
	              err);
	char *s = nb_test_read_file(path);
	ck_assert_int_eq(count(s, "<image "), 2);
	ck_assert_int_eq(count(s, "stroke=\"#d62728\""), 1);
	ck_assert_int_eq(count(s, "stroke=\"#2ca02c\""), 1);
	ck_assert_ptr_nonnull(strstr(s, ">#1: &lt;b&gt;</text>"));
	ck_assert_ptr_nonnull(strstr(s, " fill=\"#d62728\">true: one</text>"));
	unsigned char px[64];
	int w, h, colour;
	ck_assert_int_eq(png_pixels(s, 0, px, sizeof px, &w, &h, &colour), 2 * 4);
	ck_assert(w == 3 && h == 2 && colour == 0);
	const unsigned char want0[8] = {0, 0, 128, 255, 0, 255, 0, 0}; /* filter byte, row */
	ck_assert(!memcmp(px, want0, 8));
	png_pixels(s, 1, px, sizeof px, &w, &h, &colour);
	const unsigned char want1[8] = {0, 51, 102, 153, 0, 204, 255, 0};
	ck_assert(!memcmp(px, want1, 8));
	free(s);
	/* lo >= hi: the images' own range (-1 to 2) */
	g.lo = g.hi = 0;
	ck_assert_int_eq(nb_plot_image_grid_save(file("a.svg"), &g, err, sizeof err), NB_OK);
	s = nb_test_read_file(path);
	png_pixels(s, 0, px, sizeof px, &w, &h, &colour);
	const unsigned char want2[8] = {0, 85, 128, 170, 0, 255, 0, 0};
	ck_assert(!memcmp(px, want2, 8));
	free(s);
}
END_TEST

START_TEST(test_grid_rgb)
{
	float x[3 * 4];
	for (int i = 0; i < 12; i++)
		x[i] = (float)i / 11;
	nb_image_grid g = {.n = 1, .c = 3, .h = 2, .w = 2, .x = x, .lo = 0, .hi = 1, .scale = 16};
	char err[256];
	ck_assert_int_eq(nb_plot_image_grid_save(file("c.svg"), &g, err, sizeof err), NB_OK);
	char *s = nb_test_read_file(path);
	unsigned char px[64];
	int w, h, colour;
	png_pixels(s, 0, px, sizeof px, &w, &h, &colour);
	ck_assert(w == 2 && h == 2 && colour == 2);
	/* pixel (0,0): channels 0, 4, 8 of 11; CHW in, RGB out */
	ck_assert(px[1] == 0 && px[2] == 93 && px[3] == 185);
	ck_assert_ptr_nonnull(strstr(s, "width=\"32\" height=\"32\""));
	free(s);
}
END_TEST

START_TEST(test_grid_refusals)
{
	float x[4] = {0};
	char err[256];
	nb_image_grid ok = {.n = 1, .c = 1, .h = 2, .w = 2, .x = x, .hi = 1};
	struct {
		nb_image_grid g;
		const char *msg;
	} bad[] = {
	    {{.n = 0, .c = 1, .h = 2, .w = 2, .x = x}, "1 to 10000 images, not 0"},
	    {{.n = 10001, .c = 1, .h = 2, .w = 2, .x = x}, "1 to 10000 images, not 10001"},
	    {{.n = 1, .c = 2, .h = 2, .w = 2, .x = x}, "1 or 3 channels"},
	    {{.n = 1, .c = 1, .h = 0, .w = 2, .x = x}, "not 1x0x2"},
	    {{.n = 1, .c = 1, .h = 2, .w = 1025, .x = x}, "not 1x2x1025"},
	    {{.n = 1, .c = 1, .h = 2, .w = 2, .x = x, .scale = 17}, "not 0 and 17"},
	    {{.n = 1, .c = 1, .h = 2, .w = 300, .x = x, .scale = 16}, "at most 4096 pixels"},
	    {{.n = 1, .c = 1, .h = 2, .w = 2, .x = x, .columns = -1}, "not -1 and 0"},
	    {{.n = 1, .c = 1, .h = 2, .w = 2, .x = x, .lo = NAN}, "the value range is NaN"},
	    {{.n = 1, .c = 1, .h = 2, .w = 2}, "needs images"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(nb_plot_image_grid_save(file("x.svg"), &bad[i].g, err, sizeof err),
		                 NB_ERR_ARG);
		ck_assert_msg(strstr(err, bad[i].msg), "%zu: %s", i, err);
	}
	ck_assert_int_eq(nb_plot_image_grid_save(file("x.svg"), NULL, NULL, 0), NB_ERR_ARG);
	ck_assert_int_eq(access(file("x.svg"), F_OK), -1);
	ck_assert_int_eq(nb_plot_image_grid_save(file("no/x.svg"), &ok, err, sizeof err),
	                 NB_ERR_IO);
	ck_assert_int_eq(nb_plot_image_grid_save(file("no/x.png"), &ok, err, sizeof err) == NB_OK,
	                 false);
}
END_TEST

/* PNG through libgvc where Graphviz renders it; its temporary images go */
START_TEST(test_grid_png)
{
	float x[2 * 28 * 28];
	for (int i = 0; i < 2 * 28 * 28; i++)
		x[i] = (float)(i % 29) / 28;
	const char *caps[2] = {"a & b\nc", "d"};
	const bool wrong[2] = {true, false};
	nb_image_grid g = {.n = 2,
	                   .c = 1,
	                   .h = 28,
	                   .w = 28,
	                   .x = x,
	                   .hi = 1,
	                   .captions = caps,
	                   .wrong = wrong,
	                   .title = "t<1>"};
	char err[512], tmp[128];
	snprintf(tmp, sizeof tmp, "%s/t", dir);
	ck_assert_int_eq(mkdir(tmp, 0700), 0);
	setenv("TMPDIR", tmp, 1);
	nb_status st = nb_plot_image_grid_save(file("g.png"), &g, err, sizeof err);
	unsetenv("TMPDIR");
	const char *f = nb_graph_render_formats();
	if (!strstr(f, "png")) { /* no Graphviz, or none that renders PNG */
		ck_assert_int_ne(st, NB_OK);
		ck_assert_int_eq(access(path, F_OK), -1);
		return;
	}
	ck_assert_msg(st == NB_OK, "%s", err);
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	unsigned char head[24];
	ck_assert_int_eq(fread(head, 1, 24, fp), 24);
	fclose(fp);
	ck_assert(!memcmp(head, "\x89PNG\r\n\x1a\n", 8));
	uint32_t w = (uint32_t)head[16] << 24 | head[17] << 16 | head[18] << 8 | head[19];
	ck_assert_uint_ge(w, 2 * 84); /* two images of 3 x 28 pixels side by side */
	DIR *d = opendir(tmp);
	ck_assert_ptr_nonnull(d);
	int left = 0;
	for (struct dirent *e; (e = readdir(d));)
		left += e->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(left, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("figures");
	TCase *t = tcase_create("figures");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, test_confusion_svg);
	tcase_add_test(t, test_confusion_refusals);
	tcase_add_test(t, test_grid_svg);
	tcase_add_test(t, test_grid_rgb);
	tcase_add_test(t, test_grid_refusals);
	tcase_add_test(t, test_grid_png);
	suite_add_tcase(s, t);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
