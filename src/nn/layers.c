/*
 * Layer builders: small functions that create named parameters and wire
 * ops together.  They add nothing the ops cannot do; they fix names and
 * initialisations so models read like their diagrams.
 */
#include "graph/internal.h"

#include <math.h>
#include <string.h>

/* "<prefix>.<suffix>", truncated safely */
static const char *join(char *buf, size_t n, const char *prefix, const char *suffix)
{
	snprintf(buf, n, "%s.%s", prefix ? prefix : "dense", suffix);
	return buf;
}

nb_tensor *nb_dense_ex(nb_tensor *x, int64_t units, const char *name, nb_dense_opts o)
{
	if (!x)
		return NULL;
	nb_graph *g = x->g;
	if (g->status != NB_OK)
		return g->placeholder;
	char buf[256];
	if (x->shape.ndim < 1 || units <= 0) {
		char b[128];
		nb__fail(g, NB_ERR_SHAPE, "dense(%s): needs units > 0 (got %lld) and an input with a feature axis, got %s",
		         name ? name : "", (long long)units, nb_shape_str(x->shape, b, sizeof b));
		return g->placeholder;
	}
	int64_t in = x->shape.d[x->shape.ndim - 1];
	double r = 1.0 / sqrt((double)in);
	nb_init wi = o.custom_init ? o.w_init : NB_UNIFORM(-r, r);
	nb_init bi = o.custom_init ? o.b_init : NB_UNIFORM(-r, r);
	nb_tensor *w = nb_param(g, join(buf, sizeof buf, name, "w"), NB_SHAPE(units, in), wi);
	nb_tensor *y = nb_matmul_t(x, w, false, true);
	if (!o.no_bias) {
		nb_tensor *b = nb_param(g, join(buf, sizeof buf, name, "b"), NB_SHAPE(units), bi);
		y = nb_add(y, b);
	}
	return nb_set_name(y, name);
}

nb_tensor *nb_dense(nb_tensor *x, int64_t units, const char *name)
{
	return nb_dense_ex(x, units, name, (nb_dense_opts){0});
}
