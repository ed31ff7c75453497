/*
 * Graph core: the graph's lifetime, nodes and leaves, sticky errors, the
 * graph's RNG, queries.  Shapes are in shapes.c, the thread count in
 * threads.c, initialising, feeding and reading tensors in tensor.c.
 */
#include "graph/internal.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>

#include "nabla_config.h"

const char *nb_version(void)
{
	return NABLA_VERSION;
}

const char *nb_status_string(nb_status s)
{
	static const char *const names[] = {
	    [NB_OK] = "ok",
	    [NB_ERR_ARG] = "invalid argument",
	    [NB_ERR_SHAPE] = "shape mismatch",
	    [NB_ERR_DTYPE] = "wrong dtype",
	    [NB_ERR_GRAPH] = "graph misuse",
	    [NB_ERR_NOMEM] = "out of memory",
	    [NB_ERR_IO] = "I/O error",
	    [NB_ERR_FORMAT] = "bad file format",
	    [NB_ERR_VALUE] = "value out of range",
	};
	if ((unsigned)s >= sizeof names / sizeof names[0])
		return "unknown status";
	return names[s];
}

const char *nb_dtype_name(nb_dtype t)
{
	return t == NB_F32 ? "f32" : t == NB_F64 ? "f64" : "?";
}

/* ---- errors --------------------------------------------------------------- */

static void vfail(nb_graph *g, nb_status st, const char *prefix, const char *fmt, va_list ap)
{
	if (!g || g->status != NB_OK)
		return;
	g->status = st;
	/* names and paths in messages come from users and files: every recorded
	 * message is made safe for a terminal here, once (nb__shown) */
	char raw[sizeof g->errmsg];
	size_t k = (size_t)snprintf(raw, sizeof raw, "%s", prefix);
	if (k < sizeof raw)
		vsnprintf(raw + k, sizeof raw - k, fmt, ap);
	nb__shown(raw, g->errmsg, sizeof g->errmsg);
}

void nb__fail(nb_graph *g, nb_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(g, st, "", fmt, ap);
	va_end(ap);
}

/* "op(a, b): " naming the inputs (NULL ones as NULL) */
static void call_prefix(char *buf, size_t n, const char *op, nb_tensor *const *in, int n_in)
{
	size_t k = (size_t)snprintf(buf, n, "%s(", op);
	for (int i = 0; i < n_in && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "",
		                      in[i] ? in[i]->name : "NULL");
	if (k < n)
		snprintf(buf + k, n - k, "): ");
}

nb_status nb__op_fail(nb_tensor *t, nb_status st, const char *fmt, ...)
{
	char prefix[512];
	call_prefix(prefix, sizeof prefix, nb__op_name(t), t->in, t->n_in);
	va_list ap;
	va_start(ap, fmt);
	vfail(t->g, st, prefix, fmt, ap);
	va_end(ap);
	return st;
}

nb_status nb_graph_status(const nb_graph *g)
{
	return g ? g->status : NB_ERR_ARG;
}

const char *nb_graph_errmsg(const nb_graph *g)
{
	if (!g)
		return "graph is NULL (nb_graph_new failed or was not called)";
	return g->status == NB_OK ? "" : g->errmsg;
}

void nb_graph_clear_error(nb_graph *g)
{
	if (g) {
		g->status = NB_OK;
		g->errmsg[0] = 0;
	}
}

/* ---- RNG: xoshiro256** seeded by splitmix64 (util/rng.h) ----------------- */

void nb_graph_seed(nb_graph *g, uint64_t seed)
{
	if (!g)
		return;
	nb__xoshiro_seed(g->rng, seed);
}

uint64_t nb__rng_next(nb_graph *g)
{
	return nb__xoshiro_next(g->rng);
}

double nb__rng_uniform(nb_graph *g)
{
	return nb__unit53(nb__rng_next(g));
}

double nb__rng_normal(nb_graph *g)
{
	double u = nb__rng_uniform(g);
	return nb__box_muller(u, nb__rng_uniform(g));
}

/* ---- graph lifetime --------------------------------------------------------- */

static void free_node(nb_tensor *t)
{
	if (t->flags & NB_TF_PERSISTENT)
		free(t->data);
	free(t->aux);
	free(t->in);
	free(t->name);
	free(t);
}

nb_graph *nb_graph_new(nb_dtype dtype)
{
	nb_graph *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->dtype = dtype;
	g->esize = dtype == NB_F64 ? sizeof(double) : sizeof(float);
	g->training = true;
	g->building_role = NB_ROLE_OP;
	nb_graph_seed(g, 0x6e61626c61ull); /* "nabla" */
	nb_num_threads();
	if (dtype != NB_F32 && dtype != NB_F64) {
		g->dtype = NB_F32;
		g->esize = sizeof(float);
		nb__fail(g, NB_ERR_DTYPE, "nb_graph_new: unknown dtype %d (use NB_F32 or NB_F64)",
		         (int)dtype);
	}
	/* the placeholder returned by constructors after an error */
	nb_status saved = g->status;
	g->status = NB_OK;
	g->placeholder = nb__leaf(g, NB_OP_CONST, NB_ROLE_CONST, "<error>", NB_SCALAR);
	g->status = saved;
	if (!g->placeholder) {
		nb_graph_free(g);
		return NULL;
	}
	return g;
}

void nb_graph_free(nb_graph *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->n_progs; i++)
		nb__program_free(g->progs[i]);
	for (int i = g->n_owned - 1; i >= 0; i--)
		g->owned[i].destroy(g->owned[i].p);
	for (int i = 0; i < g->n_nodes; i++)
		free_node(g->nodes[i]);
	free(g->progs);
	free(g->owned);
	free(g->nodes);
	free(g);
}

nb_dtype nb_graph_dtype(const nb_graph *g)
{
	return g ? g->dtype : NB_F32;
}

void nb_graph_set_training(nb_graph *g, bool training)
{
	if (g)
		g->training = training;
}

bool nb_graph_training(const nb_graph *g)
{
	return g && g->training;
}

/* *field = v for a row count or index in [0, 2^60]; else NB_ERR_ARG on g,
 * "fn: v what" */
static nb_status set_row_field(nb_graph *g, int64_t *field, int64_t v, const char *fn,
                               const char *what)
{
	if (v < 0 || v > NB_MAX_SIZE) {
		nb__fail(g, NB_ERR_ARG, "%s: %lld %s", fn, (long long)v, what);
		return NB_ERR_ARG;
	}
	*field = v;
	return NB_OK;
}

nb_status nb_graph_set_batch_rows(nb_graph *g, int64_t rows)
{
	return g ? set_row_field(g, &g->batch_rows, rows, "nb_graph_set_batch_rows",
	                         "rows (0 means all of them)")
	         : NB_ERR_ARG;
}

int64_t nb_graph_batch_rows(const nb_graph *g)
{
	return g ? g->batch_rows : 0;
}

nb_status nb_graph_set_batch_first(nb_graph *g, int64_t first)
{
	return g ? set_row_field(g, &g->batch_first, first, "nb_graph_set_batch_first",
	                         "as the first row (0 to 2^60)")
	         : NB_ERR_ARG;
}

int64_t nb_graph_batch_first(const nb_graph *g)
{
	return g ? g->batch_first : 0;
}

int nb_graph_num_nodes(const nb_graph *g)
{
	return g ? g->n_nodes : 0;
}

static bool grow(void **arr, int *cap, int need, size_t esz)
{
	if (need <= *cap)
		return true;
	int nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	void *p = realloc(*arr, (size_t)nc * esz);
	if (!p)
		return false;
	*arr = p;
	*cap = nc;
	return true;
}

int nb__register_program(nb_graph *g, nb_program *p)
{
	if (!grow((void **)&g->progs, &g->cap_progs, g->n_progs + 1, sizeof *g->progs))
		return -1;
	g->progs[g->n_progs++] = p;
	return 0;
}

void nb__program_release(nb_graph *g, nb_program *p)
{
	for (int i = 0; i < g->n_progs; i++)
		if (g->progs[i] == p) {
			g->progs[i] = g->progs[--g->n_progs];
			break;
		}
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i]->eval_prog == p)
			g->nodes[i]->eval_prog = NULL;
	if (g->last_run == p)
		g->last_run = NULL;
	nb__program_free(p);
}

nb_status nb__graph_own(nb_graph *g, void *p, void (*destroy)(void *))
{
	if (!grow((void **)&g->owned, &g->cap_owned, g->n_owned + 1, sizeof *g->owned))
		return NB_ERR_NOMEM;
	g->owned[g->n_owned++] = (struct nb_owned){p, destroy};
	return NB_OK;
}

/* ---- nodes -------------------------------------------------------------- */

static nb_tensor *new_node(nb_graph *g, int op, int n_in)
{
	if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) {
		nb__fail(g, NB_ERR_NOMEM, "out of memory adding a node");
		return NULL;
	}
	nb_tensor *t = calloc(1, sizeof *t);
	if (!t || (n_in && !(t->in = calloc((size_t)n_in, sizeof *t->in)))) {
		free(t);
		nb__fail(g, NB_ERR_NOMEM, "out of memory adding a node");
		return NULL;
	}
	t->g = g;
	t->op = op;
	t->n_in = n_in;
	t->id = g->n_nodes;
	g->nodes[g->n_nodes++] = t;
	return t;
}

/* Remove the most recently added node (its shape rule failed). */
static void drop_last(nb_graph *g, nb_tensor *t)
{
	assert(g->n_nodes > 0 && g->nodes[g->n_nodes - 1] == t);
	g->n_nodes--;
	free_node(t);
}

static bool valid_shape(nb_graph *g, const char *what, const char *name, nb_shape s)
{
	char buf[128];
	if (s.ndim < 0 || s.ndim > NB_MAX_DIMS) {
		nb__fail(g, NB_ERR_SHAPE, "%s(%s): %d dimensions (at most %d are supported)", what,
		         name ? name : "", s.ndim, NB_MAX_DIMS);
		return false;
	}
	for (int i = 0; i < s.ndim; i++)
		if (s.d[i] <= 0) {
			nb__fail(g, NB_ERR_SHAPE, "%s(%s): dimension %d of %s is not positive",
			         what, name ? name : "", i, nb_shape_str(s, buf, sizeof buf));
			return false;
		}
	if (nb_shape_size(s) < 0) {
		nb__fail(g, NB_ERR_SHAPE, "%s(%s): %s has more than 2^60 elements", what,
		         name ? name : "", nb_shape_str(s, buf, sizeof buf));
		return false;
	}
	return true;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static bool set_auto_name(nb_tensor *t)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%s_%d", nb__op_name(t), t->id);
	free(t->name);
	t->name = dupstr(buf);
	return t->name != NULL;
}

/* A leaf of es-byte elements (g->esize, or 8 for nb__leaf_f64). */
static nb_tensor *new_leaf(nb_graph *g, int op, int role, const char *name, nb_shape s, size_t es)
{
	static const char *const what[] = {
	    [NB_OP_INPUT] = "input", [NB_OP_PARAM] = "param", [NB_OP_CONST] = "constant"};
	if (!g)
		return NULL;
	if (g->status != NB_OK)
		return g->placeholder;
	if (!valid_shape(g, what[op], name, s))
		return g->placeholder;
	nb_tensor *t = new_node(g, op, 0);
	if (!t)
		return g->placeholder;
	t->role = role;
	t->shape = s;
	t->size = nb_shape_size(s);
	t->flags = NB_TF_PERSISTENT | (role == NB_ROLE_PARAM ? NB_TF_REQUIRES_GRAD : 0);
	/* the seed "1", zero gradients, constants inside VJPs: DOT's forward
	 * view leaves them out */
	if (g->building_role == NB_ROLE_GRAD)
		t->flags |= NB_TF_BACKWARD;
	t->data = calloc(1, (size_t)t->size * es + nb__blas_slack(s, es));
	if (!t->data || !(name ? (t->name = dupstr(name)) != NULL : set_auto_name(t))) {
		drop_last(g, t);
		nb__fail(g, NB_ERR_NOMEM, "%s(%s): out of memory for %lld elements", what[op],
		         name ? name : "", (long long)nb_shape_size(s));
		return g->placeholder;
	}
	return t;
}

nb_tensor *nb__leaf(nb_graph *g, int op, int role, const char *name, nb_shape s)
{
	return new_leaf(g, op, role, name, s, g ? g->esize : 0);
}

nb_tensor *nb__leaf_f64(nb_graph *g, const char *name, nb_shape s)
{
	nb_tensor *t = new_leaf(g, NB_OP_CONST, NB_ROLE_CONST, name, s, sizeof(double));
	if (t && !nb__is_placeholder(t))
		t->flags |= NB_TF_F64;
	return t;
}

bool nb__is_placeholder(const nb_tensor *t)
{
	return t && t == t->g->placeholder;
}

nb_graph *nb__graph_of(nb_tensor *const *in, int n)
{
	for (int i = 0; i < n; i++)
		if (in[i])
			return in[i]->g;
	return NULL;
}

nb_tensor *nb__op(int op, nb_tensor *const *in, int n, const nb_attrs *a)
{
	assert(op >= 0 && op < NB_OP_COUNT);
	const nb_opdef *def = nb__ops[op];
	/* a custom op's registered name */
	const char *name = def->name_of && a ? def->name_of(a) : def->name;
	nb_graph *g = nb__graph_of(in, n);
	if (!g)
		return NULL; /* every input NULL: nothing to attach an error to */
	if (g->status != NB_OK)
		return g->placeholder;
	if (def->n_inputs >= 0 && n != def->n_inputs) {
		nb__fail(g, NB_ERR_ARG, "%s: takes %d inputs, got %d", name, def->n_inputs, n);
		return g->placeholder;
	}
	if (n < 1 && def->n_inputs < 0) {
		nb__fail(g, NB_ERR_ARG, "%s: needs at least one input", name);
		return g->placeholder;
	}
	char call[512];
	call_prefix(call, sizeof call, name, in, n);
	int first = 0; /* the input g was taken from */
	while (!in[first])
		first++;
	for (int i = 0; i < n; i++) {
		if (!in[i]) {
			nb__fail(g, NB_ERR_ARG, "%sinput %d is NULL", call, i);
			return g->placeholder;
		}
		if (in[i]->g != g) {
			nb__fail(g, NB_ERR_GRAPH,
			         "%sinput %d (%s) belongs to another graph than input %d (%s)",
			         call, i, in[i]->name, first, in[first]->name);
			/* record it on the other graph too, so either check sees it */
			nb__fail(in[i]->g, NB_ERR_GRAPH,
			         "%sinput %d (%s) was mixed with a tensor of another graph", call,
			         i, in[i]->name);
			return g->placeholder;
		}
		if ((in[i]->flags & NB_TF_F64) && !(def->flags & NB_OPF_UPDATE)) {
			/* its kernels would read the doubles as the graph's type */
			nb__fail(
			    g, NB_ERR_ARG,
			    "%sinput %d (%s) is an optimizer's hyper-parameter vector, which only "
			    "update ops read",
			    call, i, in[i]->name);
			return g->placeholder;
		}
	}
	nb_tensor *t = new_node(g, op, n);
	if (!t)
		return g->placeholder;
	for (int i = 0; i < n; i++) {
		t->in[i] = in[i];
		if (in[i]->flags & NB_TF_REQUIRES_GRAD)
			t->flags |= NB_TF_REQUIRES_GRAD;
	}
	if (def->flags & NB_OPF_NO_GRAD)
		t->flags &= ~NB_TF_REQUIRES_GRAD;
	if (a)
		t->a = *a;
	t->role = def->flags & NB_OPF_UPDATE ? NB_ROLE_UPDATE : g->building_role;
	t->name = NULL;
	if (def->shape(t) != NB_OK || !valid_shape(g, name, "", t->shape)) {
		drop_last(g, t);
		return g->placeholder;
	}
	t->size = nb_shape_size(t->shape);
	if (!set_auto_name(t)) {
		drop_last(g, t);
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", name);
		return g->placeholder;
	}
	return t;
}

nb_tensor *nb__op1(int op, nb_tensor *x, const nb_attrs *a)
{
	return nb__op(op, &x, 1, a);
}

nb_tensor *nb__op2(int op, nb_tensor *x, nb_tensor *y, const nb_attrs *a)
{
	nb_tensor *in[2] = {x, y};
	return nb__op(op, in, 2, a);
}

/* ---- leaves ---------------------------------------------------------------- */

nb_tensor *nb_input(nb_graph *g, const char *name, nb_shape shape)
{
	return nb__leaf(g, NB_OP_INPUT, NB_ROLE_INPUT, name, shape);
}

/* the parameter of g called name, other than t (NULL: none) */
static nb_tensor *other_param(const nb_graph *g, const char *name, const nb_tensor *t)
{
	for (int i = 0; name && i < g->n_nodes; i++) {
		nb_tensor *u = g->nodes[i];
		if (u != t && u->role == NB_ROLE_PARAM && u->name && !strcmp(u->name, name))
			return u;
	}
	return NULL;
}

/* Two parameters with one name would be ambiguous in a checkpoint, an
 * export and nb_graph_find: the second is refused. */
static bool refuse_duplicate_param(nb_graph *g, const char *what, const char *name,
                                   const nb_tensor *t)
{
	if (!other_param(g, name, t))
		return false;
	char b[128];
	nb__fail(g, NB_ERR_ARG,
	         "%s(%s): the graph already has a parameter named '%s' (parameter names must be "
	         "unique: give each layer its own name)",
	         what, nb__shown(name, b, sizeof b), b);
	return true;
}

nb_tensor *nb_param(nb_graph *g, const char *name, nb_shape shape, nb_init init)
{
	if (g && g->status == NB_OK && refuse_duplicate_param(g, "param", name, NULL))
		return g->placeholder;
	nb_tensor *t = nb__leaf(g, NB_OP_PARAM, NB_ROLE_PARAM, name, shape);
	if (t && !nb__is_placeholder(t) && nb_init_tensor(t, init) != NB_OK)
		return g->placeholder;
	return t;
}

nb_tensor *nb_constant(nb_graph *g, const char *name, nb_shape shape, const double *values)
{
	nb_tensor *t = nb__leaf(g, NB_OP_CONST, NB_ROLE_CONST, name, shape);
	if (t && !nb__is_placeholder(t) && values)
		for (int64_t i = 0; i < t->size; i++)
			nb__set(t, i, values[i]);
	return t;
}

nb_tensor *nb_scalar(nb_graph *g, double value)
{
	char name[48];
	snprintf(name, sizeof name, "%.6g", value);
	return nb_constant(g, name, NB_SCALAR, &value);
}

nb_tensor *nb__zeros_like(nb_tensor *t)
{
	return nb_constant(t->g, "0", t->shape, NULL);
}

nb_tensor *nb__state_like(nb_tensor *t, const char *suffix)
{
	char name[256];
	snprintf(name, sizeof name, "%s.%s", t->name, suffix);
	nb_tensor *s = nb__leaf(t->g, NB_OP_CONST, NB_ROLE_STATE, name, t->shape);
	if (s && !nb__is_placeholder(s))
		s->flags |= NB_TF_OPTIM_STATE;
	return s;
}

nb_tensor *nb_requires_grad(nb_tensor *t)
{
	if (t && !nb__is_placeholder(t))
		t->flags |= NB_TF_REQUIRES_GRAD;
	return t;
}

/* ---- queries ----------------------------------------------------------------- */

nb_graph *nb_tensor_graph(const nb_tensor *t)
{
	return t ? t->g : NULL;
}

const char *nb_tensor_name(const nb_tensor *t)
{
	return t ? t->name : "(null)";
}

nb_tensor *nb_set_name(nb_tensor *t, const char *name)
{
	if (!t || !name || nb__is_placeholder(t))
		return t;
	if (t->role == NB_ROLE_PARAM && refuse_duplicate_param(t->g, "set_name", name, t))
		return t;
	char *d = dupstr(name);
	if (!d) {
		nb__fail(t->g, NB_ERR_NOMEM, "set_name: out of memory");
		return t;
	}
	free(t->name);
	t->name = d;
	return t;
}

nb_shape nb_tensor_shape(const nb_tensor *t)
{
	return t ? t->shape : NB_SCALAR;
}

int64_t nb_tensor_size(const nb_tensor *t)
{
	return t ? t->size : 0;
}

const char *nb_tensor_op(const nb_tensor *t)
{
	return t ? nb__op_name(t) : "(null)";
}

bool nb_is_param(const nb_tensor *t)
{
	return t && t->op == NB_OP_PARAM;
}

int nb_graph_num_params(const nb_graph *g)
{
	int n = 0;
	for (int i = 0; g && i < g->n_nodes; i++)
		n += g->nodes[i]->op == NB_OP_PARAM;
	return n;
}

nb_tensor *nb_graph_param(const nb_graph *g, int k)
{
	for (int i = 0; g && i < g->n_nodes; i++)
		if (g->nodes[i]->op == NB_OP_PARAM && k-- == 0)
			return g->nodes[i];
	return NULL;
}

nb_tensor *nb_graph_find(const nb_graph *g, const char *name)
{
	for (int i = 0; g && name && i < g->n_nodes; i++)
		if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name))
			return g->nodes[i];
	return NULL;
}
