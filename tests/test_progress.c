/*
 * The training progress bar fits the terminal: nb_progress_line at every
 * width, nb_fit's bar (nb_fit_opts.progress) and the real `nabla train` in
 * pseudo-terminals of 80 and 40 columns, where a redraw wider than the
 * terminal would wrap into a new line each time.
 */
#include "test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const nb_progress wide = {.epoch = 123456,
                                 .epochs = 1000000,
                                 .batch = 123456789012,
                                 .batches = 987654321098,
                                 .step = 5,
                                 .loss = -1.234567e-300,
                                 .seconds = 12345.6,
                                 .samples_per_s = 1.5e12};
static const nb_progress usual = {.epoch = 3,
                                  .epochs = 10,
                                  .batch = 123,
                                  .batches = 469,
                                  .loss = 0.43219,
                                  .seconds = 4.2,
                                  .samples_per_s = 12345};

/* never more than width - 1 characters, at any width, for any numbers */
START_TEST(test_line_fits_every_width)
{
	const nb_progress *ps[] = {&wide, &usual};
	char buf[512];
	for (int k = 0; k < 2; k++)
		for (int w = 0; w <= 300; w++) {
			int n = nb_progress_line(buf, sizeof buf, ps[k], w);
			ck_assert_int_eq((int)strlen(buf), n);
			ck_assert_msg(n <= (w > 0 ? w - 1 : 0), "width %d: %d characters: %s", w, n,
			              buf);
			if (w >= 40)
				ck_assert_msg(strstr(buf, "loss ") && strstr(buf, "epoch "),
				              "%d: %s", w, buf);
		}
	/* a small buffer is never overrun */
	ck_assert_int_eq(nb_progress_line(buf, 8, &usual, 200), 7);
	ck_assert_int_eq(nb_progress_line(buf, 0, &usual, 200), 0);
}
END_TEST

/* the fields go in a fixed order as the terminal narrows: the rate, the
 * ETA, the batch count; then the bar gets shorter */
START_TEST(test_fields_drop_in_order)
{
	char buf[256];
	nb_progress_line(buf, sizeof buf, &usual, 200);
	ck_assert_str_eq(buf, "epoch 3/10 [#######.....................] 123/469  loss 0.4322  "
	                      "12345 samples/s  ETA 00:11");
	nb_progress_line(buf, sizeof buf, &usual, 80); /* the bar narrower, all fields */
	ck_assert_str_eq(buf,
	                 "epoch 3/10 [####.............] 123/469  loss 0.4322  12345 samples/s  "
	                 "ETA 00:11");
	nb_progress_line(buf, sizeof buf, &usual, 70);
	ck_assert_str_eq(buf, "epoch 3/10 [####............] 123/469  loss 0.4322  ETA 00:11");
	nb_progress_line(buf, sizeof buf, &usual, 60);
	ck_assert_str_eq(buf, "epoch 3/10 [####............] 123/469  loss 0.4322");
	nb_progress_line(buf, sizeof buf, &usual, 44);
	ck_assert_str_eq(buf, "epoch 3/10 [####............]  loss 0.4322");
	nb_progress_line(buf, sizeof buf, &usual, 40);
	ck_assert_str_eq(buf, "epoch 3/10 [###..........]  loss 0.4322");
	nb_progress_line(buf, sizeof buf, &usual, 30);
	ck_assert_str_eq(buf, "epoch 3/10  loss 0.4322");
	nb_progress_line(buf, sizeof buf, &usual, 10);
	ck_assert_str_eq(buf, "epoch 3/1");
}
END_TEST

/* TIOCGWINSZ, else COLUMNS, else 80 */
START_TEST(test_terminal_width)
{
	FILE *fp = tmpfile();
	ck_assert_ptr_nonnull(fp);
	unsetenv("COLUMNS");
	ck_assert_int_eq(nb_terminal_width(fp), 80);
	ck_assert_int_eq(nb_terminal_width(NULL), 80);
	static const struct {
		const char *v;
		int want;
	} cols[] = {{"132", 132}, {"40", 40}, {"0", 80},     {"-5", 80}, {"abc", 80},
	            {"50x", 80},  {"", 80},   {"99999", 80}, {" 50", 80}};
	for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) {
		setenv("COLUMNS", cols[i].v, 1);
		ck_assert_msg(nb_terminal_width(fp) == cols[i].want, "COLUMNS=%s", cols[i].v);
	}
	fclose(fp);
	/* a terminal's own width comes first */
	int master, slave;
	struct winsize ws = {.ws_row = 24, .ws_col = 57};
	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, &ws), 0);
	fp = fdopen(slave, "w");
	setenv("COLUMNS", "132", 1);
	ck_assert_int_eq(nb_terminal_width(fp), 57);
	unsetenv("COLUMNS");
	fclose(fp);
	close(master);
}
END_TEST

/* Everything readable on fd until EOF/EIO (the other end closed) or, with
 * pid > 0, until that child exited; returns the bytes (malloc'd). */
static char *drain(int fd, pid_t pid, int *status)
{
	size_t cap = 1 << 16, n = 0;
	char *s = malloc(cap);
	ck_assert_ptr_nonnull(s);
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, pid > 0 ? 100 : 0);
		if (r > 0) {
			if (n + 4096 >= cap)
				ck_assert_ptr_nonnull(s = realloc(s, cap *= 2));
			ssize_t k = read(fd, s + n, 4096);
			if (k <= 0)
				break;
			n += (size_t)k;
			continue;
		}
		if (pid <= 0 || r < 0)
			break;
		if (waitpid(pid, status, WNOHANG) == pid)
			pid = 0; /* read what is left, then stop */
	}
	if (pid > 0)
		ck_assert_int_eq(waitpid(pid, status, 0), pid);
	s[n] = 0;
	return s;
}

/* Each redraw (what follows a '\r', up to the next '\r', '\n' or ESC) has
 * at most width - 1 characters; "\r ESC [ K" erases the line (what follows
 * it is an ordinary line).  Returns the number of redraws. */
static int check_redraws(const char *out, int width)
{
	int redraws = 0;
	for (const char *p = strchr(out, '\r'); p; p = strchr(p, '\r')) {
		p++;
		if (!strncmp(p, "\033[K", 3))
			continue;
		size_t k = strcspn(p, "\r\n\033");
		char seg[512];
		snprintf(seg, sizeof seg, "%.*s", (int)k, p);
		ck_assert_msg((int)k <= width - 1, "a redraw of %zu characters at width %d: '%s'",
		              k, width, seg);
		redraws += k > 0;
	}
	return redraws;
}

static int count_char(const char *s, char c)
{
	int n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

/* nb_fit's own bar on a terminal of 40 columns, erased before on_epoch */
typedef struct seen {
	int epochs;
} seen;

static bool on_epoch(const nb_epoch_stats *s, void *user)
{
	(void)s;
	((seen *)user)->epochs++;
	return true;
}

START_TEST(test_fit_draws_a_bar_that_fits)
{
	nb_model *m = nb_test_zoo("resnet20", NB_F32, 2, 1);
	nb_optim *o = nb_optimizer(nb_model_graph(m), nb_model_loss(m),
	                           (nb_optim_opts){.kind = NB_OPTIM_SGD, .lr = 0.01});
	ck_assert_ptr_nonnull(o);
	nb_dataset d;
	ck_assert_int_eq(nb_synthetic_cifar(8, 1, &d), NB_OK);
	int master, slave;
	struct termios tio;
	cfmakeraw(&tio);
	struct winsize ws = {.ws_row = 24, .ws_col = 40};
	ck_assert_int_eq(openpty(&master, &slave, NULL, &tio, &ws), 0);
	FILE *fp = fdopen(slave, "w");
	ck_assert_ptr_nonnull(fp);
	seen sn = {0};
	nb_fit_opts fo = {
	    .epochs = 2, .seed = 1, .progress = fp, .on_epoch = on_epoch, .user = &sn};
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(sn.epochs, 2);
	fclose(fp);
	int status;
	char *out = drain(master, 0, &status);
	close(master);
	ck_assert_int_ge(check_redraws(out, 40), 4); /* the first and last batch of each epoch */
	ck_assert_msg(strstr(out, "\repoch 1/2 [") && strstr(out, "\repoch 2/2 ["), "%s", out);
	ck_assert_int_eq(count_char(out, '\n'), 0);
	/* the line is erased at the end */
	size_t n = strlen(out);
	ck_assert_msg(n >= 4 && !strcmp(out + n - 4, "\r\033[K"), "%s", out);
	free(out);
	/* not a terminal: nothing */
	FILE *log = tmpfile();
	fo.progress = log;
	fo.first_epoch = 0;
	ck_assert_int_eq(nb_fit(m, o, &d, fo), NB_OK);
	ck_assert_int_eq(ftell(log), 0);
	fclose(log);
	nb_dataset_free(&d);
	nb_graph_free(nb_model_graph(m));
}
END_TEST

/* ---- `nabla train` in a pseudo-terminal ------------------------------------------------ */

static char dir[64];

static void be32(FILE *fp, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	ck_assert_uint_eq(fwrite(b, 1, 4, fp), 4);
}

static void write_idx(const char *prefix, int n)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, prefix);
	FILE *fp = fopen(p, "wb");
	ck_assert_ptr_nonnull(fp);
	be32(fp, 0x803), be32(fp, (uint32_t)n), be32(fp, 28), be32(fp, 28);
	for (int i = 0; i < n * 28 * 28; i++)
		fputc((i * 37 + i / 784 * 11) & 0xff, fp);
	fclose(fp);
	snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, prefix);
	fp = fopen(p, "wb");
	ck_assert_ptr_nonnull(fp);
	be32(fp, 0x801), be32(fp, (uint32_t)n);
	for (int i = 0; i < n; i++)
		fputc(i % 10, fp);
	fclose(fp);
}

#define TRAIN_ARGS                                                                                 \
	"train", "--model", "lenet", "--data", dir, "--batch", "2", "--epochs", "3", "--out",      \
	    "none", "--threads", "1"

/* `nabla train` on a terminal of `cols` columns: what it wrote there */
static char *train_on_terminal(int cols)
{
	int master;
	struct termios tio;
	cfmakeraw(&tio); /* '\n' stays '\n' */
	struct winsize ws = {.ws_row = 24, .ws_col = (unsigned short)cols};
	pid_t pid = forkpty(&master, NULL, &tio, &ws);
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("COLUMNS", "200", 1); /* the terminal's own width comes first */
		execl(NB_NABLA_EXE, "nabla", TRAIN_ARGS, (char *)NULL);
		_exit(127);
	}
	int status;
	char *out = drain(master, pid, &status);
	close(master);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit %d:\n%s", status, out);
	return out;
}

START_TEST(test_train_fits_the_terminal)
{
	snprintf(dir, sizeof dir, "/tmp/nb_progress_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_idx("train", 40);
	write_idx("t10k", 4);
	/* the lines without a terminal: banner, epochs, ... */
	char cmd[512];
	snprintf(
	    cmd, sizeof cmd,
	    "%s train --model lenet --data %s --batch 2 --epochs 3 --out none --threads 1 2>&1",
	    NB_NABLA_EXE, dir);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	int lines = 0;
	for (int c; (c = fgetc(p)) != EOF;)
		lines += c == '\n';
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_int_ge(lines, 3);
	int widths[] = {80, 40};
	for (int k = 0; k < 2; k++) {
		char *out = train_on_terminal(widths[k]);
		int redraws = check_redraws(out, widths[k]);
		ck_assert_msg(redraws >= 6, "%d redraws at width %d:\n%s", redraws, widths[k], out);
		/* the redraws stay on their line: as many lines as without a terminal */
		ck_assert_msg(count_char(out, '\n') == lines,
		              "%d lines at width %d, %d without:\n%s", count_char(out, '\n'),
		              widths[k], lines, out);
		ck_assert_msg(strstr(out, "\repoch 3/3 ["), "%s", out);
		free(out);
	}
	char p2[128];
	for (const char *f = "train-images-idx3-ubyte\0train-labels-idx1-ubyte\0"
	                     "t10k-images-idx3-ubyte\0t10k-labels-idx1-ubyte\0";
	     *f; f += strlen(f) + 1) {
		snprintf(p2, sizeof p2, "%s/%s", dir, f);
		unlink(p2);
	}
	rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("progress");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_line_fits_every_width);
	tcase_add_test(tc, test_fields_drop_in_order);
	tcase_add_test(tc, test_terminal_width);
	tcase_add_test(tc, test_fit_draws_a_bar_that_fits);
	tcase_add_test(tc, test_train_fits_the_terminal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
