/* nabla/data.h — part of the public API; include "nabla.h" instead.
 *
 * Dataset readers (IDX: MNIST / Fashion-MNIST; CIFAR-10 binary), a
 * synthetic CIFAR-shaped generator, transforms and a minibatch iterator.
 * Nothing here touches a graph: the module produces float arrays that
 * training code copies into input tensors with nb_feed_f32.
 *
 * Readers return an nb_status and, when err is not NULL, write a message
 * naming the file and what was expected versus what was found.  They never
 * abort on bad input.  They read regular files only (a FIFO or device is
 * NB_ERR_IO at once, without blocking), gzip-compressed or raw; an IDX
 * header is checked before the rest of its file is read, and gzip data is
 * inflated no further than the header announces.  See docs/data.md.
 */
/* the core types first, outside the guard: whichever header comes first,
 * nabla.h then includes this one with them defined */
#include "nabla.h"

#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- datasets ---------------------------------------------------------- */

/* n samples of shape [c, h, w] (NCHW, sample-major) with integer labels.
 * Pixels are scaled to [0, 1] (byte / 255) at load time. */
typedef struct nb_dataset {
	int64_t n;       /* number of samples */
	int c, h, w;     /* shape of one sample (IDX images: c = 1) */
	int num_classes; /* labels lie in [0, num_classes) */
	float *x;        /* n * c * h * w values */
	int32_t *y;      /* n labels */
} nb_dataset;

/* Readers refuse data with more values than this (n*c*h*w): it guards the
 * arithmetic and the allocations against absurd dimensions in a header. */
#define NB_DATA_MAX_VALUES ((int64_t)INT32_MAX)

/* Frees x and y and zeroes the struct (safe on a zeroed struct and NULL).
 * Every function that fills an nb_dataset overwrites it without freeing,
 * and leaves it zeroed on failure. */
NB_API void nb_dataset_free(nb_dataset *d);
NB_API int64_t nb_dataset_sample_size(const nb_dataset *d); /* c*h*w */

/* ---- IDX (MNIST, Fashion-MNIST) ------------------------------------- */

/* Images: magic 0x00000803 (unsigned bytes, 3 dims n, rows, cols); labels:
 * magic 0x00000801 (unsigned bytes, 1 dim n); big-endian sizes.  Files may
 * be gzip-compressed or raw.  Each file must hold exactly the bytes its
 * header announces (no bytes after the gzip data either); the counts must agree; labels must be
 * < 10 (MNIST format; num_classes = 10). */
NB_API nb_status nb_idx_load(const char *images_path, const char *labels_path, nb_dataset *out,
                             char *err, size_t errlen);
/* Same with another number of classes: labels must be < num_classes; 0
 * means any byte value, with num_classes = max label + 1. */
NB_API nb_status nb_idx_load_classes(const char *images_path, const char *labels_path,
                                     int num_classes, nb_dataset *out, char *err, size_t errlen);
/* The parser underneath, on uncompressed bytes in memory (used by the file
 * loaders and by the fuzzer).  Messages call the buffers "images" and
 * "labels". */
NB_API nb_status nb_idx_parse(const void *images, size_t images_len, const void *labels,
                              size_t labels_len, int num_classes, nb_dataset *out, char *err,
                              size_t errlen);

#define NB_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist/"
/* dir NULL: NB_FASHION_MNIST_DIR (Debian's dataset-fashion-mnist).  Reads
 * train-images-idx3-ubyte.gz / train-labels-idx1-ubyte.gz (train) or the
 * t10k-* files (test); a file without the .gz suffix is used when the .gz
 * one does not exist.  60000 / 10000 samples of 1x28x28, 10 classes. */
NB_API nb_status nb_fashion_mnist_load(const char *dir, bool train, nb_dataset *out, char *err,
                                       size_t errlen);

/* ---- CIFAR-10 binary ------------------------------------------------- */

/* Records of 1 label byte (< 10) and 3072 pixel bytes: 1024 red, 1024
 * green, 1024 blue, each 32x32 row-major; the file size must be a positive
 * multiple of 3073.  The parser reads uncompressed bytes in memory. */
#define NB_CIFAR10_RECORD 3073
NB_API nb_status nb_cifar10_parse(const void *buf, size_t len, nb_dataset *out, char *err,
                                  size_t errlen);
NB_API nb_status nb_cifar10_load_file(const char *path, nb_dataset *out, char *err, size_t errlen);
/* train: data_batch_1.bin .. data_batch_5.bin (50000 samples) in that order;
 * test: test_batch.bin (10000).  dir NULL: NB_CIFAR10_DIR. */
#define NB_CIFAR10_DIR "cifar-10-batches-bin"
NB_API nb_status nb_cifar10_load(const char *dir, bool train, nb_dataset *out, char *err,
                                 size_t errlen);

/* n samples of 3x32x32 in [0, 1] and 10 classes, the same for the same seed
 * (and sample i does not depend on n).  Each class has a colour tint and an
 * oriented stripe pattern with a random phase, plus noise (sd 0.08);
 * classes come in pairs sharing a tint, told apart only by the orientation,
 * so a linear model is not enough but a small convnet learns it.
 * NB_ERR_ARG for n <= 0 or too large, NB_ERR_NOMEM. */
NB_API nb_status nb_synthetic_cifar(int64_t n, uint64_t seed, nb_dataset *out);

/* ---- transforms ------------------------------------------------------- */

/* Per-channel mean and (population) standard deviation over all samples;
 * mean and std hold d->c values. */
NB_API nb_status nb_dataset_channel_stats(const nb_dataset *d, double *mean, double *std);
/* x = (x - mean[ch]) / std[ch] in place; a std of 0 (a constant channel)
 * is treated as 1 so the channel becomes 0.  Use it on test data with the
 * training set's statistics. */
NB_API nb_status nb_dataset_normalize(nb_dataset *d, const double *mean, const double *std);
/* channel_stats then normalize; mean and std (d->c values each) receive the
 * statistics used.  Either may be NULL when the caller does not want them. */
NB_API nb_status nb_dataset_standardize(nb_dataset *d, double *mean, double *std);

/* out[i*num_classes + k] = (labels[i] == k); NB_ERR_VALUE (out untouched)
 * when a label is outside [0, num_classes).  (nb_one_hot is the graph op
 * that does the same to a tensor of class ids.) */
NB_API nb_status nb_labels_one_hot(const int32_t *labels, int64_t n, int num_classes, float *out);
/* the former name of nb_labels_one_hot, kept for release 0.1 */
NB_API nb_status nb_onehot(const int32_t *labels, int64_t n, int num_classes, float *out);

/* A copy of the samples of src whose label is one of classes[0..k-1],
 * relabelled classes[j] -> j, in their original order; num_classes = k.
 * The classes must be distinct and in range (NB_ERR_ARG).  out must not be
 * src (NB_ERR_ARG, src untouched); free src afterwards if it is not needed. */
NB_API nb_status nb_dataset_select_classes(const nb_dataset *src, const int *classes, int k,
                                           nb_dataset *out);
/* A copy of samples [start, start + count) of src (out must not be src). */
NB_API nb_status nb_dataset_slice(const nb_dataset *src, int64_t start, int64_t count,
                                  nb_dataset *out);

/* idx = a random permutation of 0..n-1 (Fisher-Yates on a splitmix64
 * stream); the same seed gives the same permutation on every machine. */
NB_API void nb_permutation(int64_t *idx, int64_t n, uint64_t seed);
/* Reorders the samples (and labels) in place: afterwards sample k is the
 * old sample nb_permutation(.., seed)[k]. */
NB_API nb_status nb_dataset_shuffle(nb_dataset *d, uint64_t seed);

/* ---- validation split ------------------------------------------------- */

/* How many of n samples a validation fraction holds out: round(n *
 * fraction), halves rounded up.  NB_ERR_ARG unless 0 < fraction < 1 and
 * both parts keep at least one sample (1 <= *n_val <= n - 1). */
NB_API nb_status nb_split_count(int64_t n, double fraction, int64_t *n_val);
/* Which samples go where: the validation part is a seeded random choice of
 * nb_split_count(n, fraction) samples (the same seed and n give the same
 * choice on every machine), the training part the rest; each list in
 * increasing order.  train_idx takes n - n_val entries, val_idx n_val
 * (either may be NULL).  NB_ERR_ARG as nb_split_count, NB_ERR_NOMEM. */
NB_API nb_status nb_split_indices(int64_t n, double fraction, uint64_t seed, int64_t *train_idx,
                                  int64_t *val_idx);
/* The two parts of src as copies (the samples in their original order);
 * neither may be src.  Both are zeroed on failure. */
NB_API nb_status nb_dataset_split(const nb_dataset *src, double fraction, uint64_t seed,
                                  nb_dataset *train, nb_dataset *val);

/* ---- augmentation ------------------------------------------------------ */

/* Random crops with padding and horizontal flips of [c, h, w] images, the
 * standard CIFAR recipe (crop_pad 4, flip).  A sample's draws depend only
 * on (seed, epoch, index), its position in the dataset being walked: the
 * same seed gives the same bits whatever the batch order or thread count,
 * and every epoch draws anew.  Nothing is drawn when both are off, and the
 * sample is copied unchanged. */
typedef struct nb_augment {
	/* random crop: the image padded with crop_pad zeros on each side, then
	 * an h x w window at a uniform offset in [0, 2 crop_pad] (both axes):
	 * a shift of up to crop_pad pixels, the uncovered border 0 (black on
	 * [0, 1] pixels, the channel mean on standardized data).  0: none;
	 * at most min(h, w). */
	int crop_pad;
	/* mirror left-right with probability 1/2 (after the crop).  Right for
	 * photographs and clothes; wrong for digits and text (a mirrored 2 is
	 * no digit), so the zoo's Fashion-MNIST models leave it off by default
	 * (the IDX reader takes MNIST digits too). */
	bool flip;
} nb_augment;

/* NB_ERR_ARG (with a message in err when given) unless 0 <= crop_pad <=
 * min(h, w) and the shape is positive; a NULL a is no augmentation. */
NB_API nb_status nb_augment_check(const nb_augment *a, int c, int h, int w, char *err,
                                  size_t errlen);
/* One sample src -> dst (distinct buffers of c*h*w floats), augmented as
 * sample `index` of epoch `epoch` (from 0) with `seed`.  Crop offsets dy,
 * dx then the flip come from one splitmix64 stream keyed by (seed, epoch,
 * index): dy = draw mod (2 crop_pad + 1) and dx likewise (without modulo
 * bias), flip = the top bit of the next draw. */
NB_API nb_status nb_augment_sample(const nb_augment *a, uint64_t seed, int64_t epoch, int64_t index,
                                   int c, int h, int w, const float *src, float *dst);
/* n samples of x in place, row i as sample index[i] (index NULL: i). */
NB_API nb_status nb_augment_batch(const nb_augment *a, uint64_t seed, int64_t epoch,
                                  const int64_t *index, int64_t n, int c, int h, int w, float *x);

/* ---- minibatches ------------------------------------------------------ */

typedef struct nb_batcher nb_batcher;

typedef struct nb_batcher_opts {
	int64_t batch_size; /* > 0 */
	bool shuffle;       /* a new order every epoch, from seed and the epoch */
	bool drop_last;     /* skip a final batch smaller than batch_size */
	uint64_t seed;
	/* augment each copied sample (x only), keyed by the batcher's epoch
	 * and the sample's index in the dataset; NULL: copies unchanged.  The
	 * batcher keeps its own copy of *augment. */
	const nb_augment *augment;
} nb_batcher_opts;

/* Caller-owned buffers for one batch; any may be NULL.  Sizes are for a
 * full batch: x batch_size*c*h*w, onehot batch_size*num_classes, the
 * others batch_size. */
typedef struct nb_batch {
	float *x;
	float *ids;    /* labels as float values, for nb_sparse_cce */
	float *onehot; /* for nb_cce */
	int32_t *labels;
	int64_t *index; /* which dataset sample each row is */
} nb_batch;

/* The batcher keeps a pointer to d, which must outlive it (its values may
 * change, e.g. by nb_dataset_normalize, but not its size).  NB_ERR_ARG
 * also for an augmentation that does not fit d's samples. */
NB_API nb_status nb_batcher_new(const nb_dataset *d, nb_batcher_opts opts, nb_batcher **out);
NB_API void nb_batcher_free(nb_batcher *b);
/* Copies the next batch into out and returns how many samples it holds:
 * batch_size, fewer for the last batch of an epoch when n is not a multiple
 * (unless drop_last), and 0 once the epoch is over — the call after that
 * starts the next epoch.  Rows past the returned count are zero in the
 * float buffers and -1 in labels and index.  -1 when b or out is NULL. */
NB_API int64_t nb_batcher_next(nb_batcher *b, const nb_batch *out);
NB_API int64_t nb_batcher_batches_per_epoch(const nb_batcher *b);
/* The epoch the next batch belongs to, counting from 0 (epochs completed). */
NB_API int64_t nb_batcher_epoch(const nb_batcher *b);
/* Restart at the beginning of epoch `epoch` (its order is the same as the
 * first time round). */
NB_API void nb_batcher_seek_epoch(nb_batcher *b, int64_t epoch);

#ifdef __cplusplus
}
#endif
#endif
