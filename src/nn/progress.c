/*
 * The progress bar of nb_fit (nb_fit_opts.progress) and `nabla train`: one
 * line redrawn in place that always fits the terminal, so a redraw never
 * wraps into a new line.
 */
#include "nn/progress.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BAR_MAX 28  /* the bar on a wide terminal */
#define BAR_FULL 16 /* the narrowest bar beside every field */
#define BAR_MIN 5   /* the narrowest bar at all */

int nb_terminal_width(FILE *fp)
{
	struct winsize ws;
	int fd = fp ? fileno(fp) : -1;
	if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	if (c && *c >= '1' && *c <= '9') {
		char *end;
		errno = 0;
		long v = strtol(c, &end, 10);
		if (!*end && !errno && v <= 10000)
			return (int)v;
	}
	return 80;
}

static void fmt_eta(char *buf, size_t n, double s)
{
	if (!isfinite(s) || s < 0 || s >= 360000)
		snprintf(buf, n, "--:--");
	else if (s >= 3600)
		snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
	else
		snprintf(buf, n, "%02d:%02d", (int)s / 60, (int)s % 60);
}

/* the line with the fields of mask (1 count, 2 ETA, 4 rate) and a bar of
 * bar characters (0: none); its length */
enum { F_COUNT = 1, F_ETA = 2, F_RATE = 4 };

static int compose(char *buf, size_t n, const nb_progress *p, int bar, unsigned mask)
{
	char b[BAR_MAX + 4] = "", eta[32], count[48] = "", tail[96] = "", rate[48] = "";
	if (bar > 0) {
		int64_t of = p->batches > 0 ? p->batches : 1;
		int64_t done = p->batch < of ? p->batch : of;
		int fill = (int)((int64_t)bar * (done > 0 ? done : 0) / of);
		b[0] = ' ', b[1] = '[';
		for (int i = 0; i < bar; i++)
			b[2 + i] = i < fill ? '#' : '.';
		b[2 + bar] = ']', b[3 + bar] = 0;
	}
	if (mask & F_COUNT)
		snprintf(count, sizeof count, " %lld/%lld", (long long)p->batch,
		         (long long)p->batches);
	if (mask & F_RATE)
		snprintf(rate, sizeof rate, "  %.0f samples/s", p->samples_per_s);
	if (mask & F_ETA) {
		double per = p->batch > 0 ? p->seconds / (double)p->batch : NAN;
		fmt_eta(eta, sizeof eta, per * (double)(p->batches - p->batch));
		snprintf(tail, sizeof tail, "  ETA %s", eta);
	}
	return snprintf(buf, n, "epoch %d/%d%s%s  loss %.4g%s%s", p->epoch, p->epochs, b, count,
	                p->loss, rate, tail);
}

/* len as what buf holds: snprintf counts what did not fit in n bytes too */
static int held(size_t n, int len)
{
	return (size_t)len >= n ? (int)n - 1 : len;
}

int nb_progress_line(char *buf, size_t n, const nb_progress *p, int width)
{
	if (!buf || !n)
		return 0;
	buf[0] = 0;
	if (!p || width < 2)
		return 0;
	int max = width - 1; /* the last column would wrap on some terminals */
	/* every field, the bar from its widest down to BAR_FULL; then the
	 * fields dropped in this order: the rate, the ETA, the count; then the
	 * bar narrower, then none */
	static const unsigned masks[] = {F_COUNT | F_ETA | F_RATE, F_COUNT | F_ETA, F_COUNT, 0};
	int len = 0;
	for (int bar = BAR_MAX; bar >= BAR_FULL; bar--)
		if ((len = compose(buf, n, p, bar, masks[0])) <= max)
			return held(n, len);
	for (size_t k = 1; k < sizeof masks / sizeof *masks; k++)
		if ((len = compose(buf, n, p, BAR_FULL, masks[k])) <= max)
			return held(n, len);
	for (int bar = BAR_FULL - 1; bar >= BAR_MIN; bar--)
		if ((len = compose(buf, n, p, bar, 0)) <= max)
			return held(n, len);
	len = held(n, compose(buf, n, p, 0, 0));
	if (len > max) /* a very narrow terminal: cut */
		len = max;
	buf[len] = 0;
	return len;
}

void nb__progress_draw(FILE *fp, const nb_progress *p)
{
	char line[256];
	int w = nb_terminal_width(fp);
	if (w > (int)sizeof line)
		w = (int)sizeof line;
	nb_progress_line(line, sizeof line, p, w);
	/* back to the start of the line, the bar, the rest of the old line erased */
	fprintf(fp, "\r%s\033[K", line);
	fflush(fp);
}

void nb__progress_clear(FILE *fp)
{
	fputs("\r\033[K", fp);
	fflush(fp);
}
