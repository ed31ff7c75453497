/*
 * Data augmentation (random crops with padding, horizontal flips) and the
 * validation split: exact results on small known images, determinism, and
 * that augmentation switched off changes nothing.
 */
#include "test_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The crop and flip by definition: out(y, x) = in(y + dy, x' + dx) with x'
 * = w-1-x when flipped, 0 outside. */
static void reference(const float *in, int c, int h, int w, int dy, int dx, bool flip, float *out)
{
	for (int ch = 0; ch < c; ch++)
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				int sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
				out[(ch * h + y) * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w
				                                ? in[(ch * h + sy) * w + sx]
				                                : 0.0f;
			}
}

/* The reference against results worked out by hand on a 2x3 image. */
START_TEST(test_reference_by_hand)
{
	const float img[6] = {1, 2, 3, 4, 5, 6};
	float out[6];
	reference(img, 1, 2, 3, 0, 0, false, out);
	ck_assert(!memcmp(out, img, sizeof out));
	reference(img, 1, 2, 3, 1, -1, false, out);
	ck_assert(!memcmp(out, ((float[]){0, 4, 5, 0, 0, 0}), sizeof out));
	reference(img, 1, 2, 3, 0, 0, true, out);
	ck_assert(!memcmp(out, ((float[]){3, 2, 1, 6, 5, 4}), sizeof out));
	reference(img, 1, 2, 3, 0, 1, true, out);
	ck_assert(!memcmp(out, ((float[]){0, 3, 2, 0, 6, 5}), sizeof out));
	reference(img, 1, 2, 3, -1, 0, false, out);
	ck_assert(!memcmp(out, ((float[]){0, 0, 0, 1, 2, 3}), sizeof out));
}
END_TEST

/* Every augmented sample of a 2x3x4 image (distinct nonzero pixels) is one
 * of the (2p+1)^2 * 2 crops and flips, and over many samples each of them
 * turns up, about equally often. */
START_TEST(test_crops_and_flips_exact)
{
	enum { C = 2, H = 3, W = 4, SZ = C * H * W, P = 1, K = (2 * P + 1) * (2 * P + 1) * 2 };
	float img[SZ], cand[K][SZ], out[SZ];
	for (int i = 0; i < SZ; i++)
		img[i] = (float)(i + 1);
	for (int k = 0; k < K; k++)
		reference(img, C, H, W, k / 2 / 3 - P, k / 2 % 3 - P, k % 2, cand[k]);
	int count[K] = {0};
	nb_augment a = {.crop_pad = P, .flip = true};
	const int N = 3600;
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(nb_augment_sample(&a, 7, i % 5, i / 5, C, H, W, img, out), NB_OK);
		int hit = -1;
		for (int k = 0; k < K && hit < 0; k++)
			if (!memcmp(out, cand[k], sizeof out))
				hit = k;
		ck_assert_msg(hit >= 0, "sample %d is no crop or flip of the image", i);
		count[hit]++;
	}
	for (int k = 0; k < K; k++) /* 200 expected each; 5 sd is about 70 */
		ck_assert_msg(count[k] > 130 && count[k] < 270, "crop %d: %d of %d", k, count[k],
		              N);
	/* flips only: the image or its mirror; crops only: never mirrored */
	nb_augment f = {.flip = true}, c = {.crop_pad = P};
	int flipped = 0;
	for (int i = 0; i < 400; i++) {
		ck_assert_int_eq(nb_augment_sample(&f, 3, 0, i, C, H, W, img, out), NB_OK);
		bool same = !memcmp(out, cand[(P * 3 + P) * 2], sizeof out);
		bool mirror = !memcmp(out, cand[(P * 3 + P) * 2 + 1], sizeof out);
		ck_assert(same || mirror);
		flipped += mirror;
		ck_assert_int_eq(nb_augment_sample(&c, 3, 0, i, C, H, W, img, out), NB_OK);
		bool unflipped = false;
		for (int k = 0; k < K; k += 2)
			unflipped |= !memcmp(out, cand[k], sizeof out);
		ck_assert(unflipped);
	}
	ck_assert(flipped > 150 && flipped < 250);
	/* a padding as large as the image may leave nothing of it */
	nb_augment big = {.crop_pad = H};
	ck_assert_int_eq(nb_augment_check(&big, C, H, W, NULL, 0), NB_OK);
}
END_TEST

/* The draws depend on (seed, epoch, index) alone: a batch in any order and
 * any thread count gives each sample the same bits; another epoch or seed
 * gives other draws. */
START_TEST(test_augment_deterministic)
{
	enum { C = 3, H = 8, W = 8, SZ = C * H * W, N = 16 };
	float *x = malloc(sizeof(float) * SZ * N), *y = malloc(sizeof(float) * SZ * N);
	float one[SZ];
	int64_t idx[N], rev[N];
	for (int i = 0; i < SZ * N; i++)
		x[i] = (float)((i * 37) % 101) / 100.0f + 0.01f;
	for (int i = 0; i < N; i++)
		idx[i] = 100 + i, rev[i] = 100 + N - 1 - i;
	nb_augment a = {.crop_pad = 2, .flip = true};
	for (int threads = 1; threads <= 3; threads += 2) {
		nb_set_num_threads(threads);
		memcpy(y, x, sizeof(float) * SZ * N);
		ck_assert_int_eq(nb_augment_batch(&a, 42, 3, idx, N, C, H, W, y), NB_OK);
		for (int i = 0; i < N; i++) {
			ck_assert_int_eq(
			    nb_augment_sample(&a, 42, 3, idx[i], C, H, W, x + i * SZ, one), NB_OK);
			ck_assert(!memcmp(one, y + i * SZ, sizeof one));
		}
		/* the rows reversed: each keeps its own draws */
		float *z = malloc(sizeof(float) * SZ * N);
		for (int i = 0; i < N; i++)
			memcpy(z + i * SZ, x + (N - 1 - i) * SZ, sizeof one);
		ck_assert_int_eq(nb_augment_batch(&a, 42, 3, rev, N, C, H, W, z), NB_OK);
		for (int i = 0; i < N; i++)
			ck_assert(!memcmp(z + i * SZ, y + (N - 1 - i) * SZ, sizeof one));
		free(z);
	}
	nb_set_num_threads(0);
	/* another epoch, another seed: other draws for most samples */
	int differ_epoch = 0, differ_seed = 0;
	for (int i = 0; i < N; i++) {
		float e[SZ], s[SZ];
		nb_augment_sample(&a, 42, 4, idx[i], C, H, W, x + i * SZ, e);
		nb_augment_sample(&a, 43, 3, idx[i], C, H, W, x + i * SZ, s);
		differ_epoch += !!memcmp(e, y + i * SZ, sizeof e);
		differ_seed += !!memcmp(s, y + i * SZ, sizeof s);
	}
	ck_assert_int_ge(differ_epoch, N / 2);
	ck_assert_int_ge(differ_seed, N / 2);
	free(x), free(y);
}
END_TEST

/* Switched off (NULL, or no crop and no flip), nothing changes and nothing
 * is drawn: the batches are the samples, bit for bit. */
START_TEST(test_augment_off_changes_nothing)
{
	enum { C = 1, H = 4, W = 5, SZ = C * H * W, N = 6 };
	float x[SZ * N], y[SZ * N], one[SZ];
	for (int i = 0; i < SZ * N; i++)
		x[i] = (float)i * 0.37f - 3.0f;
	memcpy(y, x, sizeof y);
	nb_augment off = {0};
	ck_assert_int_eq(nb_augment_batch(&off, 1, 0, NULL, N, C, H, W, y), NB_OK);
	ck_assert(!memcmp(x, y, sizeof x));
	ck_assert_int_eq(nb_augment_batch(NULL, 1, 0, NULL, N, C, H, W, y), NB_OK);
	ck_assert(!memcmp(x, y, sizeof x));
	ck_assert_int_eq(nb_augment_sample(&off, 1, 0, 2, C, H, W, x + 2 * SZ, one), NB_OK);
	ck_assert(!memcmp(one, x + 2 * SZ, sizeof one));
	/* the batcher: with augment {0} the batches equal those without */
	nb_dataset d = {.n = N,
	                .c = C,
	                .h = H,
	                .w = W,
	                .num_classes = 2,
	                .x = x,
	                .y = (int32_t[N]){0, 1, 0, 1, 0, 1}};
	nb_batcher *b1, *b2;
	ck_assert_int_eq(
	    nb_batcher_new(&d, (nb_batcher_opts){.batch_size = 4, .shuffle = true, .seed = 9}, &b1),
	    NB_OK);
	ck_assert_int_eq(
	    nb_batcher_new(
	        &d, (nb_batcher_opts){.batch_size = 4, .shuffle = true, .seed = 9, .augment = &off},
	        &b2),
	    NB_OK);
	float o1[4 * SZ], o2[4 * SZ];
	for (int k = 0; k < 6; k++) {
		int64_t n1 = nb_batcher_next(b1, &(nb_batch){.x = o1});
		int64_t n2 = nb_batcher_next(b2, &(nb_batch){.x = o2});
		ck_assert_int_eq(n1, n2);
		ck_assert(!memcmp(o1, o2, sizeof o1));
	}
	nb_batcher_free(b1), nb_batcher_free(b2);
}
END_TEST

/* The batcher augments each row as sample (its dataset index) of its
 * epoch, anew every epoch, and seeking an epoch repeats its draws. */
START_TEST(test_batcher_augments)
{
	enum { C = 3, H = 6, W = 6, SZ = C * H * W, N = 10, B = 4 };
	float *x = malloc(sizeof(float) * SZ * N);
	int32_t y[N];
	for (int i = 0; i < SZ * N; i++)
		x[i] = (float)(i % 251) + 1;
	for (int i = 0; i < N; i++)
		y[i] = i % 3;
	nb_dataset d = {.n = N, .c = C, .h = H, .w = W, .num_classes = 3, .x = x, .y = y};
	nb_augment a = {.crop_pad = 2, .flip = true};
	nb_batcher *b;
	ck_assert_int_eq(
	    nb_batcher_new(
	        &d, (nb_batcher_opts){.batch_size = B, .shuffle = true, .seed = 11, .augment = &a},
	        &b),
	    NB_OK);
	a.crop_pad = 0; /* the batcher keeps its own copy */
	float out[B * SZ], want[SZ], first[2][B * SZ];
	int64_t index[B];
	a.crop_pad = 2;
	for (int epoch = 0; epoch < 3; epoch++) {
		int64_t n, k = 0;
		while ((n = nb_batcher_next(b, &(nb_batch){.x = out, .index = index})) > 0) {
			for (int64_t i = 0; i < n; i++) {
				nb_augment_sample(&a, 11, epoch, index[i], C, H, W,
				                  x + index[i] * SZ, want);
				ck_assert(!memcmp(out + i * SZ, want, sizeof want));
			}
			if (k < 2 && epoch < 2)
				memcpy(first[k], out, sizeof out);
			k++;
		}
	}
	nb_batcher_seek_epoch(b, 1);
	nb_batcher_next(b, &(nb_batch){.x = out});
	ck_assert(!memcmp(out, first[0], sizeof out));
	nb_batcher_free(b);
	/* an augmentation that does not fit the images */
	nb_augment wide = {.crop_pad = 7};
	ck_assert_int_eq(
	    nb_batcher_new(&d, (nb_batcher_opts){.batch_size = B, .augment = &wide}, &b),
	    NB_ERR_ARG);
	ck_assert_ptr_null(b);
	free(x);
}
END_TEST

START_TEST(test_augment_errors)
{
	char err[200];
	nb_augment neg = {.crop_pad = -1}, big = {.crop_pad = 29};
	ck_assert_int_eq(nb_augment_check(&neg, 1, 28, 28, err, sizeof err), NB_ERR_ARG);
	ck_assert_str_eq(err, "augment: a crop padding of -1 does not fit 28x28 images (0 to 28)");
	ck_assert_int_eq(nb_augment_check(&big, 1, 28, 30, err, sizeof err), NB_ERR_ARG);
	ck_assert_str_eq(err, "augment: a crop padding of 29 does not fit 28x30 images (0 to 28)");
	ck_assert_int_eq(nb_augment_check(NULL, 0, 28, 28, err, sizeof err), NB_ERR_ARG);
	float a[4] = {1, 2, 3, 4}, b[4];
	nb_augment ok = {.crop_pad = 1};
	ck_assert_int_eq(nb_augment_sample(&ok, 1, 0, 0, 1, 2, 2, a, a), NB_ERR_ARG);
	ck_assert_int_eq(nb_augment_sample(&ok, 1, -1, 0, 1, 2, 2, a, b), NB_ERR_ARG);
	ck_assert_int_eq(nb_augment_sample(&ok, 1, 0, -1, 1, 2, 2, a, b), NB_ERR_ARG);
	ck_assert_int_eq(nb_augment_sample(&big, 1, 0, 0, 1, 2, 2, a, b), NB_ERR_ARG);
	ck_assert_int_eq(nb_augment_batch(&ok, 1, 0, (int64_t[]){-2}, 1, 1, 2, 2, a), NB_ERR_ARG);
	ck_assert(a[0] == 1 && a[3] == 4); /* untouched */
}
END_TEST

/* Every zoo model names the augmentation --augment applies without a
 * spec, fitting its images: crops and flips for CIFAR-10, crops without
 * flips for the IDX images (which may be digits). */
START_TEST(test_zoo_default_augmentation)
{
	int n = 0;
	for (int i = 0; nb_zoo(i); i++, n++) {
		const nb_zoo_entry *z = nb_zoo(i);
		const nb_augment *a = z->recipe.augment;
		ck_assert_msg(a != NULL, "%s has no default augmentation", z->name);
		ck_assert_int_eq(nb_augment_check(a, z->c, z->h, z->w, NULL, 0), NB_OK);
		bool cifar = z->recipe.data == NB_ZOO_DATA_CIFAR10;
		ck_assert_int_eq(a->crop_pad, cifar ? 4 : 2);
		ck_assert_msg(a->flip == cifar, "%s: flip %d", z->name, a->flip);
	}
	ck_assert_int_ge(n, 6);
}
END_TEST

/* ---- the validation split ------------------------------------------------- */

START_TEST(test_split_count)
{
	int64_t v = -1;
	ck_assert_int_eq(nb_split_count(10, 0.1, &v), NB_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(nb_split_count(60000, 0.1, &v), NB_OK);
	ck_assert_int_eq(v, 6000);
	ck_assert_int_eq(nb_split_count(5, 0.5, &v), NB_OK); /* 2.5: halves up */
	ck_assert_int_eq(v, 3);
	ck_assert_int_eq(nb_split_count(2, 0.5, &v), NB_OK);
	ck_assert_int_eq(v, 1);
	v = -1;
	/* nothing held out, nothing left, out of range, no fraction */
	ck_assert_int_eq(nb_split_count(10, 0.04, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(10, 0.96, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(1, 0.5, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(10, 0, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(10, 1, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(10, -0.1, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(10, NAN, &v), NB_ERR_ARG);
	ck_assert_int_eq(nb_split_count(10, 0.5, NULL), NB_ERR_ARG);
	ck_assert_int_eq(v, -1);
}
END_TEST

START_TEST(test_split_indices_and_copies)
{
	enum { N = 50 };
	int64_t tr[N], va[N], tr2[N], va2[N];
	ck_assert_int_eq(nb_split_indices(N, 0.2, 5, tr, va), NB_OK);
	ck_assert_int_eq(nb_split_indices(N, 0.2, 5, tr2, va2), NB_OK);
	ck_assert(!memcmp(tr, tr2, sizeof(int64_t) * 40) && !memcmp(va, va2, sizeof(int64_t) * 10));
	int seen[N] = {0};
	for (int i = 0; i < 40; i++)
		seen[tr[i]]++, ck_assert(i == 0 || tr[i] > tr[i - 1]);
	for (int i = 0; i < 10; i++)
		seen[va[i]]++, ck_assert(i == 0 || va[i] > va[i - 1]);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(seen[i], 1);
	/* not simply the first or last samples, and another seed picks others */
	ck_assert(!(va[0] == 0 && va[9] == 9) && !(va[0] == 40 && va[9] == 49));
	ck_assert_int_eq(nb_split_indices(N, 0.2, 6, tr2, va2), NB_OK);
	ck_assert(memcmp(va, va2, sizeof(int64_t) * 10));
	/* the copies hold those samples */
	nb_dataset d = {.n = N, .c = 1, .h = 1, .w = 2, .num_classes = 50};
	d.x = malloc(sizeof(float) * 2 * N), d.y = malloc(sizeof(int32_t) * N);
	for (int i = 0; i < N; i++)
		d.x[2 * i] = (float)i, d.x[2 * i + 1] = (float)-i, d.y[i] = i;
	nb_dataset t, v;
	ck_assert_int_eq(nb_dataset_split(&d, 0.2, 5, &t, &v), NB_OK);
	ck_assert_int_eq(t.n, 40);
	ck_assert_int_eq(v.n, 10);
	ck_assert_int_eq(v.num_classes, 50);
	for (int i = 0; i < 40; i++)
		ck_assert(t.y[i] == tr[i] && t.x[2 * i] == (float)tr[i] &&
		          t.x[2 * i + 1] == (float)-tr[i]);
	for (int i = 0; i < 10; i++)
		ck_assert(v.y[i] == va[i] && v.x[2 * i] == (float)va[i]);
	nb_dataset_free(&t), nb_dataset_free(&v);
	ck_assert_int_eq(nb_dataset_split(&d, 0.001, 5, &t, &v), NB_ERR_ARG);
	ck_assert(!t.x && !v.x && !t.n && !v.n);
	ck_assert_int_eq(nb_dataset_split(&d, 0.5, 5, &d, &v), NB_ERR_ARG);
	nb_dataset_free(&d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("augment");
	TCase *tc = tcase_create("augment");
	tcase_add_test(tc, test_reference_by_hand);
	tcase_add_test(tc, test_crops_and_flips_exact);
	tcase_add_test(tc, test_augment_deterministic);
	tcase_add_test(tc, test_augment_off_changes_nothing);
	tcase_add_test(tc, test_batcher_augments);
	tcase_add_test(tc, test_augment_errors);
	tcase_add_test(tc, test_zoo_default_augmentation);
	tcase_add_test(tc, test_split_count);
	tcase_add_test(tc, test_split_indices_and_copies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
