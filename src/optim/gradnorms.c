/*
 * Per-layer gradient statistics (include/nabla/gradnorms.h): the norm of
 * each layer's gradient and of its update relative to its weights, recorded
 * at every step of an optimizer that tracks them.
 *
 * Tracking adds, per layer, a global_norm node over the layer's gradients,
 * kept as a target of the step.  The update's norm needs the parameters
 * before and after the step: nb_step copies them before running
 * (nb__gradnorms_before, which sums their squares on the way: the weights'
 * norm) and sums the squared differences after (nb__gradnorms_after), one
 * pass over the parameters each, in double, eight running sums added in a
 * fixed order (a single running sum would wait on each addition).
 */
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the accumulators: the public means (reset by nb_optim_grad_norms_reset)
 * and the window nb_fit reports every grad_norm_interval steps */
enum { ACC_MEANS, ACC_WINDOW, ACC_COUNT };

typedef struct acc {
	double *gsum, *rsum;
	int64_t *rcount; /* steps with a defined ratio, per layer */
	int64_t steps, first_step;
} acc;

struct nb__gradnorms {
	int n_layers;
	char (*names)[128];
	int *start;          /* layer l's parameters: order[start[l] .. start[l+1]) */
	int *order;          /* parameter indices (into o->params), layer by layer */
	nb_tensor **gnode;   /* per layer: ||g|| */
	double *w2;          /* per layer: ||w||^2 before the step being taken */
	double *wlast;       /* ||w|| before the last step */
	unsigned char *snap; /* the parameters before the step */
	size_t *snap_off;    /* per parameter, in bytes */
	acc acc[ACC_COUNT];
	bool on;
};

/* the layer of a parameter name: up to the last '.' (the whole name when
 * it has none), at most 127 bytes */
static void layer_of(const char *name, char out[128])
{
	const char *dot = strrchr(name, '.');
	size_t n = dot && dot != name ? (size_t)(dot - name) : strlen(name);
	if (n > 127)
		n = 127;
	memcpy(out, name, n);
	out[n] = 0;
}

static void acc_free(acc *a)
{
	free(a->gsum), free(a->rsum), free(a->rcount);
}

void nb__gradnorms_free(nb__gradnorms *s)
{
	if (!s)
		return;
	free(s->names), free(s->start), free(s->order), free(s->gnode), free(s->w2);
	free(s->wlast), free(s->snap), free(s->snap_off);
	for (int k = 0; k < ACC_COUNT; k++)
		acc_free(&s->acc[k]);
	free(s);
}

static void acc_reset(acc *a, int n, int64_t step)
{
	memset(a->gsum, 0, (size_t)n * sizeof *a->gsum);
	memset(a->rsum, 0, (size_t)n * sizeof *a->rsum);
	memset(a->rcount, 0, (size_t)n * sizeof *a->rcount);
	a->steps = 0;
	a->first_step = step + 1;
}

/* The layers of o's parameters and their norm nodes; NULL after recording
 * the error on the graph. */
static nb__gradnorms *build(nb_optim *o)
{
	nb_graph *g = o->g;
	int n = o->n;
	nb__gradnorms *s = calloc(1, sizeof *s);
	bool ok = s && (s->names = calloc((size_t)n, sizeof *s->names)) &&
	          (s->start = calloc((size_t)n + 1, sizeof *s->start)) &&
	          (s->order = calloc((size_t)n, sizeof *s->order)) &&
	          (s->snap_off = calloc((size_t)n, sizeof *s->snap_off));
	int *layer = ok ? calloc((size_t)n, sizeof *layer) : NULL;
	if (!layer) {
		nb__gradnorms_free(s);
		nb__fail(g, NB_ERR_NOMEM, "%s: grad norms: out of memory", o->name);
		return NULL;
	}
	/* layers in the order of their first parameter (o->params is in
	 * creation order) */
	char name[128];
	for (int i = 0; i < n; i++) {
		layer_of(o->params[i]->name, name);
		int l = 0;
		while (l < s->n_layers && strcmp(s->names[l], name))
			l++;
		if (l == s->n_layers)
			memcpy(s->names[s->n_layers++], name, sizeof name);
		layer[i] = l;
	}
	int L = s->n_layers, k = 0;
	for (int l = 0; l < L; l++) {
		s->start[l] = k;
		for (int i = 0; i < n; i++)
			if (layer[i] == l)
				s->order[k++] = i;
	}
	s->start[L] = k;
	free(layer);
	size_t bytes = 0;
	for (int i = 0; i < n; i++) {
		s->snap_off[i] = bytes;
		bytes += (size_t)o->params[i]->size * g->esize;
	}
	ok = (s->gnode = calloc((size_t)L, sizeof *s->gnode)) &&
	     (s->w2 = calloc((size_t)L, sizeof *s->w2)) &&
	     (s->wlast = calloc((size_t)L, sizeof *s->wlast)) &&
	     (s->snap = malloc(bytes ? bytes : 1));
	for (int a = 0; ok && a < ACC_COUNT; a++)
		ok = (s->acc[a].gsum = calloc((size_t)L, sizeof(double))) &&
		     (s->acc[a].rsum = calloc((size_t)L, sizeof(double))) &&
		     (s->acc[a].rcount = calloc((size_t)L, sizeof(int64_t)));
	nb_tensor **ts = ok ? malloc((size_t)n * sizeof *ts) : NULL;
	if (!ts) {
		nb__gradnorms_free(s);
		nb__fail(g, NB_ERR_NOMEM, "%s: grad norms: out of memory", o->name);
		return NULL;
	}
	/* gradient nodes: the DOT views group them with the backward pass */
	int saved = g->building_role;
	g->building_role = NB_ROLE_GRAD;
	for (int l = 0; l < L && g->status == NB_OK; l++) {
		int m = 0;
		for (int j = s->start[l]; j < s->start[l + 1]; j++)
			ts[m++] = o->grads[s->order[j]];
		snprintf(name, sizeof name, "%.100s.grad_norm", s->names[l]);
		s->gnode[l] = nb_set_name(nb_global_norm(ts, m), name);
	}
	g->building_role = saved;
	free(ts);
	if (g->status != NB_OK) {
		nb__gradnorms_free(s);
		return NULL;
	}
	for (int a = 0; a < ACC_COUNT; a++)
		acc_reset(&s->acc[a], L, o->steps);
	return s;
}

/* o->keep without the norm nodes, then with them when on */
static nb_status set_targets(nb_optim *o, bool on)
{
	nb__gradnorms *s = o->gn;
	int k = 0;
	for (int i = 0; i < o->n_keep; i++) {
		bool ours = false;
		for (int l = 0; l < s->n_layers && !ours; l++)
			ours = o->keep[i] == s->gnode[l];
		if (!ours)
			o->keep[k++] = o->keep[i];
	}
	o->n_keep = k;
	if (on) {
		nb_tensor **keep =
		    realloc(o->keep, ((size_t)k + (size_t)s->n_layers) * sizeof *keep);
		if (!keep) {
			nb__fail(o->g, NB_ERR_NOMEM, "%s: grad norms: out of memory", o->name);
			return NB_ERR_NOMEM;
		}
		o->keep = keep;
		for (int l = 0; l < s->n_layers; l++)
			o->keep[o->n_keep++] = s->gnode[l];
	}
	s->on = on;
	return nb__optim_finish(o) ? NB_OK : o->g->status;
}

nb_status nb_optim_track_grad_norms(nb_optim *o, bool on)
{
	if (!o)
		return NB_ERR_ARG;
	if (o->g->status != NB_OK)
		return o->g->status;
	if (!o->gn && !on)
		return NB_OK; /* never tracked: nothing to take out */
	if (o->gn && o->gn->on == on)
		return NB_OK;
	if (!o->gn && !(o->gn = build(o)))
		return o->g->status;
	return set_targets(o, on);
}

bool nb_optim_tracks_grad_norms(const nb_optim *o)
{
	return o && o->gn && o->gn->on;
}

/* Sums of squares in double with eight running sums, added in a fixed
 * order: copy_sq copies src to dst and sums src^2, diff_sq sums (a - b)^2. */
#define SUM8(N, TERM)                                                                              \
	double a_[8] = {0}, t_ = 0;                                                                \
	int64_t i = 0;                                                                             \
	for (; i + 8 <= (N); i += 8)                                                               \
		for (int j_ = 0; j_ < 8; j_++) {                                                   \
			const int64_t k = i + j_;                                                  \
			const double v_ = (TERM);                                                  \
			a_[j_] += v_ * v_;                                                         \
		}                                                                                  \
	for (; i < (N); i++) {                                                                     \
		const int64_t k = i;                                                               \
		const double v_ = (TERM);                                                          \
		t_ += v_ * v_;                                                                     \
	}                                                                                          \
	return (((a_[0] + a_[1]) + (a_[2] + a_[3])) + ((a_[4] + a_[5]) + (a_[6] + a_[7]))) + t_;

static double copy_sq_f32(float *dst, const float *src, int64_t n)
{
	SUM8(n, (double)(dst[k] = src[k]))
}

static double copy_sq_f64(double *dst, const double *src, int64_t n)
{
	SUM8(n, dst[k] = src[k])
}

static double diff_sq_f32(const float *a, const float *b, int64_t n)
{
	SUM8(n, (double)a[k] - (double)b[k])
}

static double diff_sq_f64(const double *a, const double *b, int64_t n)
{
	SUM8(n, a[k] - b[k])
}

void nb__gradnorms_before(nb_optim *o)
{
	nb__gradnorms *s = o->gn;
	for (int l = 0; l < s->n_layers; l++) {
		double w2 = 0;
		for (int j = s->start[l]; j < s->start[l + 1]; j++) {
			const nb_tensor *p = o->params[s->order[j]];
			void *dst = s->snap + s->snap_off[s->order[j]];
			w2 += nb__is_f32(p) ? copy_sq_f32(dst, p->data, p->size)
			                    : copy_sq_f64(dst, p->data, p->size);
		}
		s->w2[l] = w2;
	}
}

void nb__gradnorms_after(nb_optim *o)
{
	nb__gradnorms *s = o->gn;
	for (int l = 0; l < s->n_layers; l++) {
		double gn = nb__get(s->gnode[l], 0), wn = sqrt(s->w2[l]), du = 0;
		for (int j = s->start[l]; j < s->start[l + 1]; j++) {
			const nb_tensor *p = o->params[s->order[j]];
			const void *before = s->snap + s->snap_off[s->order[j]];
			du += nb__is_f32(p) ? diff_sq_f32(p->data, before, p->size)
			                    : diff_sq_f64(p->data, before, p->size);
		}
		s->wlast[l] = wn;
		for (int a = 0; a < ACC_COUNT; a++) {
			s->acc[a].gsum[l] += gn;
			if (wn > 0) {
				s->acc[a].rsum[l] += sqrt(du) / wn;
				s->acc[a].rcount[l]++;
			}
		}
	}
	for (int a = 0; a < ACC_COUNT; a++)
		s->acc[a].steps++;
}

static int fill(const nb_optim *o, const acc *a, nb_layer_norms *rows, int max)
{
	const nb__gradnorms *s = o->gn;
	for (int l = 0; l < s->n_layers && l < max; l++) {
		nb_layer_norms *r = &rows[l];
		memcpy(r->name, s->names[l], sizeof r->name);
		r->n_tensors = s->start[l + 1] - s->start[l];
		r->params = 0;
		for (int j = s->start[l]; j < s->start[l + 1]; j++)
			r->params += o->params[s->order[j]]->size;
		r->grad_norm = a->steps ? a->gsum[l] / (double)a->steps : NAN;
		r->update_ratio = a->rcount[l] ? a->rsum[l] / (double)a->rcount[l] : NAN;
		r->weight_norm = a->steps || o->steps ? s->wlast[l] : NAN;
	}
	return s->n_layers;
}

int nb_optim_grad_norms(const nb_optim *o, nb_layer_norms *rows, int max, int64_t *steps)
{
	if (steps)
		*steps = o && o->gn ? o->gn->acc[ACC_MEANS].steps : 0;
	if (!o || !o->gn)
		return 0;
	if (!rows || max < 0)
		max = 0;
	return fill(o, &o->gn->acc[ACC_MEANS], rows, max);
}

void nb_optim_grad_norms_reset(nb_optim *o)
{
	if (o && o->gn)
		acc_reset(&o->gn->acc[ACC_MEANS], o->gn->n_layers, o->steps);
}

int nb__gradnorms_window(nb_optim *o, nb_layer_norms *rows, int max, int64_t *first_step)
{
	acc *a = &o->gn->acc[ACC_WINDOW];
	*first_step = a->first_step;
	int n = fill(o, a, rows, max);
	acc_reset(a, o->gn->n_layers, o->steps);
	return n;
}

void nb__gradnorms_window_reset(nb_optim *o)
{
	if (o->gn)
		acc_reset(&o->gn->acc[ACC_WINDOW], o->gn->n_layers, o->steps);
}
