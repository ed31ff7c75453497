/*
 * `nabla train --augment [SPEC]`, and --val-split's check against the data.
 */
#include "train.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* one item of a spec, its length n */
static bool item_is(const char *item, size_t n, const char *name)
{
	return strlen(name) == n && !strncmp(item, name, n);
}

int augment_parse(const char *spec, const nb_zoo_entry *z, nb_augment *out)
{
	*out = (nb_augment){0};
	if (!strcmp(spec, "default")) {
		if (z->recipe.augment)
			*out = *z->recipe.augment;
		return -1;
	}
	if (!strcmp(spec, "none"))
		return -1;
	int side = z->h < z->w ? z->h : z->w;
	bool crop = false, flip = false;
	for (const char *p = spec;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0) {
			fprintf(stderr,
			        "nabla train: --augment '%s': an empty item (crop=N, flip, none or "
			        "default)\n",
			        spec);
			return 2;
		}
		if (item_is(p, n, "flip") || (n > 5 && !strncmp(p, "crop=", 5))) {
			bool is_flip = item_is(p, n, "flip");
			if (is_flip ? flip : crop) {
				fprintf(stderr, "nabla train: --augment '%s': %s given twice\n",
				        spec, is_flip ? "flip" : "crop");
				return 2;
			}
			if (is_flip) {
				flip = true;
			} else {
				char opt[96];
				snprintf(opt, sizeof opt, "--augment crop (for %s's %dx%d images)",
				         z->name, z->h, z->w);
				char *num = strndup(p + 5, n - 5);
				long v = 0;
				if (!num)
					fprintf(stderr, "nabla train: out of memory\n");
				bool ok = num && cli_parse_long("train", opt, num, 1, side, &v);
				free(num);
				if (!ok)
					return 2;
				out->crop_pad = (int)v;
				crop = true;
			}
		} else if (item_is(p, n, "crop") || item_is(p, n, "crop=")) {
			fprintf(stderr,
			        "nabla train: --augment crop needs its padding, e.g. crop=%d (1 to "
			        "%d)\n",
			        z->recipe.augment && z->recipe.augment->crop_pad
			            ? z->recipe.augment->crop_pad
			            : 2,
			        side);
			return 2;
		} else if (item_is(p, n, "none") || item_is(p, n, "default")) {
			fprintf(stderr, "nabla train: --augment '%s': %.*s stands alone\n", spec,
			        (int)n, p);
			return 2;
		} else {
			fprintf(
			    stderr,
			    "nabla train: --augment '%s': unknown item '%.*s' (crop=N, flip, none "
			    "or default)\n",
			    spec, (int)n, p);
			return 2;
		}
		if (!end)
			break;
		p = end + 1;
	}
	out->flip = flip;
	return -1;
}

void augment_spec(const nb_augment *a, char *buf, size_t n)
{
	if (a->crop_pad > 0 && a->flip)
		snprintf(buf, n, "crop=%d,flip", a->crop_pad);
	else if (a->crop_pad > 0)
		snprintf(buf, n, "crop=%d", a->crop_pad);
	else
		snprintf(buf, n, "%s", a->flip ? "flip" : "none");
}

bool augment_spec_ok(const char *s)
{
	if (!strcmp(s, "none") || !strcmp(s, "flip"))
		return true;
	if (strncmp(s, "crop=", 5))
		return false;
	s += 5;
	int digits = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	return digits > 0 && digits <= 4 && s[-digits] != '0' && (!*s || !strcmp(s, ",flip"));
}

int check_val_split(const train_args *a, int64_t n)
{
	int64_t nv;
	if (a->val_split <= 0 || nb_split_count(n, a->val_split, &nv) == NB_OK)
		return -1;
	double held = (double)n * a->val_split;
	fprintf(stderr,
	        "nabla train: --val-split %g of %lld training samples would leave %s: it must "
	        "hold out at least one sample and keep at least one for training\n",
	        a->val_split, (long long)n,
	        held < 1 ? "no validation sample" : "no training sample");
	return 2;
}
