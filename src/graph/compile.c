/*
 * Compile: topological schedule of what the targets need (dead nodes are
 * never scheduled), then liveness-based buffer planning: every computed
 * node gets an offset in one arena, and a buffer returns to the free list
 * after its last reader has run.  Running a program allocates nothing.
 */
#include "graph/internal.h"
#include "util/clock.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* An arena or workspace: NB_ALIGN-aligned; from 4 MiB on, aligned to 2 MiB
 * and marked for transparent huge pages (where the kernel's THP mode is
 * "madvise", as on Debian, nothing gets them otherwise): a ResNet-20
 * step streams through a 135 MiB arena, 33 000 4-KiB pages. */
static void *big_alloc(size_t bytes)
{
	const size_t huge = (size_t)2 << 20;
	if (bytes < 2 * huge)
		return aligned_alloc(NB_ALIGN, bytes);
	bytes = (bytes + huge - 1) / huge * huge;
	void *p = aligned_alloc(huge, bytes);
#ifdef MADV_HUGEPAGE
	if (p)
		madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
	return p;
}

void nb__program_free(nb_program *p)
{
	if (!p)
		return;
	free(p->sched);
	free(p->offset);
	free(p->arena);
	free(p->workspace);
	free(p->plan);
	free(p->plan_store);
	free(p->targets);
	free(p->inputs);
	free(p->prof_ns);
	free(p->fused);
	free(p);
}

/* Iterative DFS post-order from t: every input before its consumers. */
static int visit(nb_tensor *root, unsigned char *mark, nb_tensor **order, int n, nb_tensor **stack,
                 int *istack)
{
	int sp = 0;
	if (mark[root->id])
		return n;
	stack[sp] = root;
	istack[sp++] = 0;
	mark[root->id] = 1;
	while (sp) {
		nb_tensor *t = stack[sp - 1];
		int i = istack[sp - 1];
		if (i < t->n_in) {
			istack[sp - 1]++;
			nb_tensor *c = t->in[i];
			if (!mark[c->id]) {
				mark[c->id] = 1;
				stack[sp] = c;
				istack[sp++] = 0;
			}
		} else {
			order[n++] = t;
			sp--;
		}
	}
	return n;
}

/* A simple free list of arena blocks, first fit, coalescing on release. */
typedef struct block {
	size_t off, len;
} block;

typedef struct freelist {
	block *b;
	int n, cap;
	size_t top;   /* arena high-water mark */
	bool too_big; /* an arena past PTRDIFF_MAX was asked for: no program */
} freelist;

static size_t fl_alloc(freelist *fl, size_t len)
{
	int best = -1;
	for (int i = 0; i < fl->n; i++)
		if (fl->b[i].len >= len && (best < 0 || fl->b[i].len < fl->b[best].len))
			best = i;
	if (best >= 0) {
		size_t off = fl->b[best].off;
		fl->b[best].off += len;
		fl->b[best].len -= len;
		if (fl->b[best].len == 0) {
			memmove(&fl->b[best], &fl->b[best + 1],
			        (size_t)(fl->n - best - 1) * sizeof *fl->b);
			fl->n--;
		}
		return off;
	}
	/* extend the arena; reuse a free block touching the top.  Legal shapes
	 * (2^60 elements) can ask for more than the address space: the size
	 * saturates and the compile fails out of memory, never wraps */
	size_t off = fl->top;
	if (fl->n && fl->b[fl->n - 1].off + fl->b[fl->n - 1].len == fl->top) {
		off = fl->b[fl->n - 1].off;
		fl->n--;
	}
	if (len > (size_t)PTRDIFF_MAX - off) {
		fl->too_big = true;
		fl->top = (size_t)PTRDIFF_MAX;
		return 0;
	}
	fl->top = off + len;
	return off;
}

static bool fl_release(freelist *fl, size_t off, size_t len)
{
	int i = 0;
	while (i < fl->n && fl->b[i].off < off)
		i++;
	if (fl->n + 1 > fl->cap) {
		int nc = fl->cap ? fl->cap * 2 : 32;
		block *nb = realloc(fl->b, (size_t)nc * sizeof *nb);
		if (!nb)
			return false;
		fl->b = nb;
		fl->cap = nc;
	}
	memmove(&fl->b[i + 1], &fl->b[i], (size_t)(fl->n - i) * sizeof *fl->b);
	fl->b[i] = (block){off, len};
	fl->n++;
	/* coalesce with neighbours */
	if (i + 1 < fl->n && fl->b[i].off + fl->b[i].len == fl->b[i + 1].off) {
		fl->b[i].len += fl->b[i + 1].len;
		memmove(&fl->b[i + 1], &fl->b[i + 2], (size_t)(fl->n - i - 2) * sizeof *fl->b);
		fl->n--;
	}
	if (i > 0 && fl->b[i - 1].off + fl->b[i - 1].len == fl->b[i].off) {
		fl->b[i - 1].len += fl->b[i].len;
		memmove(&fl->b[i], &fl->b[i + 1], (size_t)(fl->n - i - 1) * sizeof *fl->b);
		fl->n--;
	}
	return true;
}

static bool is_planned(const nb_tensor *t)
{
	return !(t->flags & NB_TF_PERSISTENT) && !(nb__ops[t->op]->flags & NB_OPF_UPDATE);
}

/* compile's checks of its targets; false after recording the error */
static bool targets_ok(nb_graph *g, nb_tensor *const *targets, int n)
{
	if (!targets || n <= 0) {
		nb__fail(g, NB_ERR_ARG, "compile: no targets given");
		return false;
	}
	for (int i = 0; i < n; i++) {
		if (!targets[i]) {
			nb__fail(g, NB_ERR_ARG, "compile: target %d is NULL", i);
			return false;
		}
		if (targets[i]->g != g) {
			nb__fail(g, NB_ERR_GRAPH,
			         "compile: target %d (%s) belongs to another graph", i,
			         targets[i]->name);
			return false;
		}
		if (nb__is_placeholder(targets[i])) {
			nb__fail(g, NB_ERR_GRAPH, "compile: target %d is the error placeholder", i);
			return false;
		}
	}
	return true;
}

/* compile's scratch arrays, one entry per node of the graph */
typedef struct scratch {
	unsigned char *mark;
	nb_tensor **order, **stack;
	int *istack;
	int *last; /* the last step that reads a node; targets: p->n */
	int *pos;  /* schedule step of a node */
} scratch;

static bool scratch_alloc(scratch *w, int nn)
{
	w->mark = calloc((size_t)nn, 1);
	w->order = malloc((size_t)nn * sizeof *w->order);
	w->stack = malloc((size_t)nn * sizeof *w->stack);
	w->istack = malloc((size_t)nn * sizeof *w->istack);
	w->last = malloc((size_t)nn * sizeof *w->last);
	w->pos = malloc((size_t)nn * sizeof *w->pos);
	return w->mark && w->order && w->stack && w->istack && w->last && w->pos;
}

static void scratch_free(scratch *w)
{
	free(w->mark);
	free(w->order);
	free(w->stack);
	free(w->istack);
	free(w->last);
	free(w->pos);
}

/* Step t of the new order, after the deferred steps it reads (those not
 * placed yet: mark 2), each after its own. */
static void emit_after_deferred(nb_tensor *t, unsigned char *mark, nb_tensor **out, int *k)
{
	for (int i = 0; i < t->n_in; i++)
		if (mark[t->in[i]->id] == 2)
			emit_after_deferred(t->in[i], mark, out, k);
	mark[t->id] = 1;
	out[(*k)++] = t;
}

/* NB_OPF_DEFER steps (waits for communication) moved to just before the
 * first step that reads them, the ones nothing reads to the end, so that
 * the steps between go on while it is under way.  The order stays
 * topological: a deferred step's inputs came before it and still do. */
static bool defer_steps(nb_program *p, scratch *w)
{
	int nd = 0;
	for (int s = 0; s < p->n; s++)
		if (nb__ops[p->sched[s]->op]->flags & NB_OPF_DEFER) {
			w->mark[p->sched[s]->id] = 2; /* every scheduled node has mark 1 */
			nd++;
		}
	if (!nd)
		return true;
	nb_tensor **out = malloc((size_t)p->n * sizeof *out);
	if (!out)
		return false;
	int k = 0;
	for (int s = 0; s < p->n; s++)
		if (!(nb__ops[p->sched[s]->op]->flags & NB_OPF_DEFER))
			emit_after_deferred(p->sched[s], w->mark, out, &k);
	for (int s = 0; s < p->n; s++)
		if (w->mark[p->sched[s]->id] == 2)
			emit_after_deferred(p->sched[s], w->mark, out, &k);
	memcpy(p->sched, out, (size_t)p->n * sizeof *out);
	free(out);
	return true;
}

/* The fusions nb_compile applies (nb_fusion), in the order it tries them. */
const nb_fusion *const nb__fusions[] = {&nb__fuse_maxpool_relu, &nb__fuse_maxpool_backward_relu,
                                        &nb__fuse_add_relu};
const int nb__n_fusions = (int)(sizeof nb__fusions / sizeof *nb__fusions);
bool nb__fusion_off;

/* whether step s runs a fusion */
static bool step_fused(const nb_program *p, int s)
{
	return p->fused && p->fused[s];
}

/* The nodes step s reads: its node's inputs, or for a fused step its
 * producer's (what a fused kernel reads, nb_fusion). */
static nb_tensor *const *step_reads(const nb_program *p, int s, int *n)
{
	const nb_tensor *t = step_fused(p, s) ? p->sched[s]->in[0] : p->sched[s];
	*n = t->n_in;
	return t->in;
}

/* whether fusion f applies to t (and its producer) */
static bool fusion_matches(const nb_fusion *f, const nb_tensor *t)
{
	return t->op == f->op && t->in[0]->op == f->producer && (!f->match || f->match(t));
}

/* add d to count[] of each distinct node of in[0..n) */
static void count_reads(int *count, nb_tensor *const *in, int n, int d)
{
	for (int k = 0; k < n; k++) {
		bool dup = false;
		for (int j = 0; j < k; j++)
			dup |= in[j] == in[k];
		if (!dup)
			count[in[k]->id] += d;
	}
}

/* Fuse every step that matches a fusion and whose producer (in[0]) only
 * it reads and no target is: the producer leaves the schedule.  A fused
 * kernel reads what the producer reads, so no node it reads leaves: that
 * node has the producer as a reader besides any step it feeds.  The steps are
 * tried last first, and the reader counts follow what the fused steps
 * read: a backward fusion that no longer reads a node (relu's output, for
 * maxpool2d_backward+relu) lets the forward step that made it fuse in turn
 * (maxpool2d+relu).  A step is tried after every step that reads it, so
 * a producer that left is never a fused step itself, and a fused step,
 * already passed over as a producer, never leaves.
 * count: scratch, one int per node of the graph. */
static bool fuse_steps(nb_program *p, int *count)
{
	if (nb__fusion_off)
		return true;
	for (int i = 0; i < p->g->n_nodes; i++)
		count[i] = 0;
	for (int s = 0; s < p->n; s++)
		count_reads(count, p->sched[s]->in, p->sched[s]->n_in, 1);
	for (int i = 0; i < p->n_targets; i++)
		count[p->targets[i]->id]++;
	/* count[] of a producer that leaves: -1 */
	int nf = 0;
	for (int s = p->n - 1; s >= 0; s--) {
		nb_tensor *t = p->sched[s];
		if (t->n_in < 1 || count[t->id] < 0 || count[t->in[0]->id] != 1 ||
		    (nb__ops[t->in[0]->op]->flags & (NB_OPF_LEAF | NB_OPF_UPDATE)))
			continue;
		for (int f = 0; f < nb__n_fusions; f++)
			if (fusion_matches(nb__fusions[f], t)) {
				if (!p->fused &&
				    !(p->fused = calloc((size_t)p->n, sizeof *p->fused)))
					return false;
				p->fused[s] = nb__fusions[f];
				/* the step now reads what its producer read, the
				 * producer leaves */
				count_reads(count, t->in, t->n_in, -1);
				count[t->in[0]->id] = -1;
				nf++;
				break;
			}
	}
	int m = 0;
	for (int s = 0; nf && s < p->n; s++)
		if (count[p->sched[s]->id] >= 0) {
			p->fused[m] = p->fused[s];
			p->sched[m++] = p->sched[s];
		}
	p->n -= nf;
	return true;
}

/* The schedule p->sched (computed nodes only) and each node's liveness.
 * Updates go last: every reader of a parameter (forward and backward)
 * must run before the parameter is overwritten.  So first what the other
 * targets need, then everything ANY update reads, and only then the
 * updates (visiting update i's inputs just before update i would let
 * update i overwrite a parameter that update j's gradient reads). */
static bool schedule(nb_program *p, scratch *w)
{
	nb_tensor *const *targets = p->targets;
	const int n = p->n_targets;
	int m = 0;
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < n; i++) {
			nb_tensor *t = targets[i];
			bool upd = nb__ops[t->op]->flags & NB_OPF_UPDATE;
			if (!upd && pass == 0)
				m = visit(t, w->mark, w->order, m, w->stack, w->istack);
			for (int k = 0; upd && pass == 1 && k < t->n_in; k++)
				m = visit(t->in[k], w->mark, w->order, m, w->stack, w->istack);
			if (upd && pass == 2)
				m = visit(t, w->mark, w->order, m, w->stack, w->istack);
		}
	/* leaves need no step; keep only computed nodes in the schedule */
	p->sched = malloc((size_t)m * sizeof *p->sched);
	p->offset = malloc((size_t)m * sizeof *p->offset);
	if (!p->sched || !p->offset)
		return false;
	for (int i = 0; i < m; i++)
		if (!(nb__ops[w->order[i]->op]->flags & NB_OPF_LEAF))
			p->sched[p->n++] = w->order[i];
	if (!defer_steps(p, w) || !fuse_steps(p, w->last))
		return false;
	/* the inputs it reads, which must have been fed before a run */
	int ni = 0;
	for (int i = 0; i < m; i++)
		ni += w->order[i]->op == NB_OP_INPUT;
	if (ni && !(p->inputs = malloc((size_t)ni * sizeof *p->inputs)))
		return false;
	for (int i = 0; i < m; i++)
		if (w->order[i]->op == NB_OP_INPUT)
			p->inputs[p->n_inputs++] = w->order[i];

	/* liveness: last step that reads each node; targets live to the end */
	for (int i = 0; i < p->g->n_nodes; i++)
		w->last[i] = -1;
	for (int s = 0; s < p->n; s++) {
		w->pos[p->sched[s]->id] = s;
		int nr;
		nb_tensor *const *in = step_reads(p, s, &nr);
		for (int k = 0; k < nr; k++)
			w->last[in[k]->id] = s;
	}
	for (int i = 0; i < n; i++)
		w->last[targets[i]->id] = p->n;
	return true;
}

/* Step s's output buffer: an offset in the arena (the buffer of an input
 * it may take over, or a new block), then the release of the inputs whose
 * last reader it is; false when out of memory. */
static bool place_step(nb_program *p, scratch *w, freelist *fl, int s)
{
	const size_t esize = p->g->esize;
	nb_tensor *t = p->sched[s];
	const nb_opdef *def = nb__ops[t->op];
	const int *last = w->last, *pos = w->pos;
	p->offset[s] = -1;
	int reuse = -1; /* an input whose buffer the output takes over */
	int nr;
	nb_tensor *const *in = step_reads(p, s, &nr);
	const bool fused = step_fused(p, s);
	if (is_planned(t)) {
		size_t len = nb__align_up((size_t)t->size * esize);
		for (int k = 0; k < nr && reuse < 0 && (def->flags & NB_OPF_INPLACE) && !fused;
		     k++) {
			nb_tensor *c = in[k];
			if (is_planned(c) && last[c->id] == s && c->size == t->size)
				reuse = k;
		}
		p->offset[s] =
		    reuse >= 0 ? p->offset[pos[in[reuse]->id]] : (int64_t)fl_alloc(fl, len);
		p->naive_bytes = len > SIZE_MAX - p->naive_bytes ? SIZE_MAX : p->naive_bytes + len;
	}
	/* release the inputs whose last reader is this step (after the
	 * output is placed, so no kernel reads and writes one buffer,
	 * except an in-place op on the input it took over) */
	for (int k = 0; k < nr; k++) {
		nb_tensor *c = in[k];
		bool dup = false;
		for (int j = 0; j < k; j++)
			dup |= in[j] == c;
		if (reuse >= 0 && c == in[reuse])
			continue;
		if (dup || last[c->id] != s || !is_planned(c))
			continue;
		if (!fl_release(fl, (size_t)p->offset[pos[c->id]],
		                nb__align_up((size_t)c->size * esize)))
			return false;
	}
	/* a computed node nobody reads (not a target) dies at once */
	return !(is_planned(t) && last[t->id] < 0 &&
	         !fl_release(fl, (size_t)p->offset[s], nb__align_up((size_t)t->size * esize)));
}

/* The arena, with room past its end for BLIS's over-reads (nb__blas_slack);
 * false when out of memory. */
static bool alloc_arena(nb_program *p, const freelist *fl)
{
	size_t slack = 0;
	for (int s = 0; s < p->n; s++) {
		const size_t sl =
		    p->offset[s] >= 0 ? nb__blas_slack(p->sched[s]->shape, p->g->esize) : 0;
		slack = sl > slack ? sl : slack;
	}
	if (fl->too_big || fl->top > (size_t)PTRDIFF_MAX - slack)
		return false;
	p->arena_bytes = fl->top ? fl->top + slack : 0;
	return !p->arena_bytes || (p->arena = big_alloc(p->arena_bytes));
}

/* Room for the plans of the steps whose op makes one; false when out of
 * memory. */
static bool alloc_plans(nb_program *p)
{
	size_t total = 0;
	for (int s = 0; s < p->n; s++)
		total += nb__align_up(nb__ops[p->sched[s]->op]->plan_bytes);
	if (!total)
		return true;
	if (!(p->plan = calloc((size_t)p->n, sizeof *p->plan)) ||
	    !(p->plan_store = aligned_alloc(NB_ALIGN, total)))
		return false;
	memset(p->plan_store, 0, total);
	size_t at = 0;
	for (int s = 0; s < p->n; s++) {
		const size_t b = nb__align_up(nb__ops[p->sched[s]->op]->plan_bytes);
		p->plan[s] = b ? p->plan_store + at : NULL;
		at += b;
	}
	return true;
}

/* Plan every step for threads threads at ISA level isa (nb_opdef.plan) and
 * give the program a workspace as large as the largest any step asks for;
 * false when out of memory (the program keeps its old workspace, and plans
 * for no thread count: the next run plans again). */
static bool plan_steps(nb_program *p, int threads, int isa)
{
	const nb_exec x = {.threads = threads, .isa = isa};
	size_t ws = 0;
	p->plan_threads = 0;
	for (int s = 0; s < p->n; s++) {
		const nb_opdef *def = nb__ops[p->sched[s]->op];
		if (def->plan) {
			const size_t w = def->plan(p->sched[s], &x, p->plan ? p->plan[s] : NULL);
			ws = w > ws ? w : ws;
		}
	}
	ws = nb__align_up(ws);
	if (ws > p->workspace_bytes) {
		void *b = big_alloc(ws);
		if (!b)
			return false;
		free(p->workspace);
		p->workspace = b;
		p->workspace_bytes = ws;
	}
	p->plan_threads = threads;
	p->plan_isa = isa;
	return true;
}

nb_program *nb_compile(nb_graph *g, nb_tensor *const *targets, int n)
{
	if (!g || g->status != NB_OK || !targets_ok(g, targets, n))
		return NULL;
	nb_program *p = calloc(1, sizeof *p);
	scratch w = {0};
	freelist fl = {0};
	bool ok = p && scratch_alloc(&w, g->n_nodes);
	if (ok) {
		p->g = g;
		ok = (p->targets = malloc((size_t)n * sizeof *p->targets)) != NULL;
	}
	if (ok) {
		memcpy(p->targets, targets, (size_t)n * sizeof *targets);
		p->n_targets = n;
		ok = schedule(p, &w);
	}
	for (int s = 0; ok && p && s < p->n; s++)
		ok = place_step(p, &w, &fl, s);
	ok = ok && alloc_arena(p, &fl) && alloc_plans(p) &&
	     plan_steps(p, nb_num_threads(), nb__isa_level()) && nb__register_program(g, p) >= 0;
	if (!ok) {
		nb__fail(g, NB_ERR_NOMEM, "compile: out of memory");
		nb__program_free(p);
		p = NULL;
	}
	free(fl.b);
	scratch_free(&w);
	return p;
}

/* nb_run's loop; with a clock read around every kernel when profiling */
static void run_steps(nb_program *p, const nb_exec *x0)
{
	nb_graph *g = p->g;
	nb_exec x = *x0;
	const bool f32 = g->dtype == NB_F32;
	double t0 = p->prof_ns ? nb__now() : 0;
	/* A kernel may reject run-time values (a class id out of range) by
	 * failing the graph: stop there, so no later step (an optimizer
	 * update) consumes its NaN output. */
	for (int s = 0; s < p->n && g->status == NB_OK; s++) {
		const nb_opdef *d = nb__ops[p->sched[s]->op];
		const nb_fusion *f = p->fused ? p->fused[s] : NULL;
		x.plan = p->plan ? p->plan[s] : NULL;
		if (f)
			(f32 ? f->forward_f32 : f->forward_f64)(&x, p->sched[s]);
		else
			(f32 ? d->forward_f32 : d->forward_f64)(&x, p->sched[s]);
		if (p->between)
			p->between(p->between_user);
		if (p->prof_ns) {
			const double t1 = nb__now();
			p->prof_ns[s] += 1e9 * (t1 - t0);
			t0 = t1;
		}
	}
	if (p->prof_ns)
		p->prof_runs++;
}

nb_status nb__program_check_fed(nb_program *p)
{
	for (int i = 0; p && i < p->n_inputs; i++)
		if (!(p->inputs[i]->flags & NB_TF_FED)) {
			char name[128];
			nb__fail(
			    p->g, NB_ERR_ARG,
			    "run: input '%s' was never fed (give it values with nb_feed_f32 or "
			    "nb_feed_f64 before running a program that reads it)",
			    nb__shown(p->inputs[i]->name, name, sizeof name));
			return NB_ERR_ARG;
		}
	return NB_OK;
}

nb_status nb_run(nb_program *p)
{
	if (!p)
		return NB_ERR_ARG;
	nb_graph *g = p->g;
	if (g->status != NB_OK)
		return g->status;
	if (nb__program_check_fed(p) != NB_OK)
		return NB_ERR_ARG;
	for (int s = 0; s < p->n; s++)
		if (p->offset[s] >= 0)
			p->sched[s]->data = p->arena + p->offset[s];
	g->last_run = p;
	const int threads = nb_num_threads(), isa = nb__isa_level();
	if ((threads != p->plan_threads || isa != p->plan_isa) && !plan_steps(p, threads, isa)) {
		nb__fail(g, NB_ERR_NOMEM, "run: out of memory planning for %d threads", threads);
		return g->status;
	}
	const nb_exec x = {.workspace = p->workspace,
	                   .workspace_bytes = p->workspace_bytes,
	                   .threads = threads,
	                   .isa = isa,
	                   .training = g->training,
	                   .batch_rows = g->batch_rows,
	                   .batch_first = g->batch_first};
	run_steps(p, &x);
	return g->status;
}

nb_status nb_eval(nb_tensor *t)
{
	if (!t)
		return NB_ERR_ARG;
	nb_graph *g = t->g;
	if (g->status != NB_OK)
		return g->status;
	if (!t->eval_prog) {
		t->eval_prog = nb_compile(g, &t, 1);
		if (!t->eval_prog)
			return g->status;
	}
	return nb_run(t->eval_prog);
}

int nb_program_num_steps(const nb_program *p)
{
	return p ? p->n : 0;
}

size_t nb_program_planned_bytes(const nb_program *p)
{
	return p ? p->arena_bytes : 0;
}

size_t nb_program_unplanned_bytes(const nb_program *p)
{
	return p ? p->naive_bytes : 0;
}
