/* The ncurses panel: per-layer CKA bars and their history, the loss curve,
 * and the search's progress, redrawn while work runs (after every training
 * step). Keys drive the work; the terminal is restored on every way out:
 * q, Ctrl-C (pauses the work and returns to the prompt), an error, a window
 * too small, SIGTERM (restored, then the process ends as SIGTERM asks). */
#include <curses.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell/shell.h"
#include "util/clock.h"
#include "util/err.h"

enum { MIN_COLS = 72, MIN_LINES = 20 };
enum { MODE_IDLE, MODE_STEPS, MODE_SEARCH };

typedef struct panel {
    shell *sh;
    int mode, steps_left, quit, too_small, init_req;
    const rmi_eval *live;      /* the evaluation in progress inside a search */
    const job_view *jobs;      /* jobs > 1: the jobs scoring ahead for the search */
    int njobs, jobs_done, jobs_n;
    int sel;                   /* the job shown in full (j: the next one) */
    double last_draw;
    char msg[1200];
} panel;

static volatile sig_atomic_t g_term;
static volatile sig_atomic_t *g_interrupt;

static void on_sigterm(int sig)
{
    (void)sig;
    g_term = 1;
    if (g_interrupt)
        *g_interrupt = 1;
}

static void bar(int y, int x, int width, double v)
{
    int n = isfinite(v) ? (int)lround((v < 0 ? 0 : v > 1 ? 1 : v) * width) : 0;
    mvaddch(y, x, '[');
    for (int i = 0; i < width; i++)
        addch(i < n ? '#' : '.');
    addch(']');
}

/* A one-line history of values in [lo, hi], the last `width` entries. */
static void spark(int y, int x, int width, const double *h, int n, double lo, double hi)
{
    static const char lv[] = " _.-~=+*#";
    int nl = (int)sizeof lv - 2;
    int start = n > width ? n - width : 0;
    move(y, x);
    for (int i = start; i < n; i++) {
        double t = (h[i] - lo) / (hi - lo);
        int k = isfinite(t) ? (int)lround((t < 0 ? 0 : t > 1 ? 1 : t) * nl) : 0;
        addch((chtype)lv[k]);
    }
}

/* The loss curve: log10(loss) over all steps, resampled to width columns. */
static void curve(int y0, int x0, int height, int width, const double *h, int n)
{
    if (n < 1 || width < 4 || height < 2)
        return;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (h[i] > 0 && isfinite(h[i])) {
            double l = log10(h[i]);
            lo = l < lo ? l : lo;
            hi = l > hi ? l : hi;
        }
    if (!isfinite(lo))
        return;
    if (hi - lo < 1e-9)
        hi = lo + 1;
    mvprintw(y0, x0, "%8.2g", pow(10, hi));
    mvprintw(y0 + height - 1, x0, "%8.2g", pow(10, lo));
    int pw = width - 10;
    for (int c = 0; c < pw; c++) {
        int i = n <= pw ? c : (int)((double)c * (n - 1) / (pw - 1));
        if (i >= n)
            break;
        if (!(h[i] > 0 && isfinite(h[i])))
            continue;
        int r = (int)lround((hi - log10(h[i])) / (hi - lo) * (height - 1));
        mvaddch(y0 + r, x0 + 10 + c, '*');
    }
}

/* The job shown in full: the selected one if it is scoring, else the next
 * one that is. */
static int shown_job(const panel *p)
{
    for (int i = 0; i < p->njobs; i++) {
        const int k = (p->sel + i) % p->njobs;
        if (p->jobs[k].busy)
            return k;
    }
    return p->sel % p->njobs;
}

/* A student's progress: the shell's, a search's evaluation (live) or a job's. */
static int student(int y, const char *title, const job_view *v)
{
    const int W = COLS;
    mvprintw(y++, 0, "%s %.*s", title, W - (int)strlen(title) - 2, v->name);
    if (v->step)
        mvprintw(y++, 0, "step %d/%d  loss %.6f  CE %.6f%s", v->step, v->steps, v->loss, v->ce,
                 v->diverged ? "  DIVERGED (+inf)" : "");
    else
        mvprintw(y++, 0, "step 0/%d  (building the student)", v->steps);
    int bw = W / 3, hw = W - bw - 22;
    for (int l = 0; l < RMI_LAYERS; l++, y++) {
        mvprintw(y, 0, "CKA%d %.4f", l + 1, v->cka[l]);
        bar(y, 12, bw, v->cka[l]);
        spark(y, bw + 16, hw, v->h_cka[l], v->step, 0, 1);
    }
    mvprintw(y++, 0, "loss (log scale) over %d steps", v->step);
    curve(y, 0, 6, W, v->h_loss, v->step);
    return y + 6;
}

static void eval_view(job_view *v, const rmi_eval *e)
{
    snprintf(v->name, sizeof v->name, "%s", e->student.name);
    v->busy = 1;
    v->step = e->step;
    v->steps = e->s.steps;
    v->diverged = e->diverged;
    v->loss = e->loss;
    v->ce = e->ce;
    memcpy(v->cka, e->cka, sizeof v->cka);
    v->h_loss = e->h_loss;
    memcpy(v->h_cka, e->h_cka, sizeof v->h_cka);
}

static void draw(panel *p)
{
    session *s = &p->sh->s;
    erase();
    if (COLS < MIN_COLS || LINES < MIN_LINES) {
        p->too_small = 1;
        return;
    }
    int W = COLS;
    attron(A_REVERSE);
    mvprintw(0, 0, "%-*.*s", W, W,
             " rminas panel   q back  s step  S 10 steps  i init  r run search  p pause  j next job");
    attroff(A_REVERSE);
    mvprintw(1, 0, "dataset %s  teacher %s  batch %s  benchmark %s",
             s->train.n ? s->data_name : "-", s->teacher.g ? s->teacher.name : "-",
             s->data.n ? "selected" : "-", s->bench.nrows ? "nb201" : "-");

    /* the student: a job's or the search's evaluation in progress, else the
     * shell's */
    const rmi_eval *e = p->live ? p->live : (s->eval.student.g ? &s->eval : NULL);
    int y = 3, shown = p->jobs ? shown_job(p) : -1;
    if (shown >= 0) {
        char title[48];
        snprintf(title, sizeof title, "job %d/%d", shown + 1, p->njobs);
        y = student(y, title, &p->jobs[shown]);
    } else if (e) {
        job_view v;
        eval_view(&v, e);
        y = student(y, p->live ? "evaluating" : "student", &v);
    } else {
        mvprintw(y++, 0, "no student (arch set STRING, then i to init, s to step)");
        y += 10;
    }

    /* the search */
    const search *q = &s->srch;
    y++;
    if (q->scored.slot) {
        mvprintw(y++, 0, "search %s  %s  %d evaluations", search_algo_names[q->o.algo],
                 search_phase_names[q->phase], q->n);
        if (q->o.algo == SEARCH_RMINAS)
            printw("  successes %d/%d  tau %.6g  forest p %.3f", q->successes, q->o.n_collect,
                   q->tau, q->last_prob);
        else
            printw(" of %d", q->o.budget);
        int b = search_best(q);
        if (b >= 0) {
            char str[SPACE_STRLEN], note[96];
            shell_search_arch(s, &q->rec[b].arch, str, note);
            mvprintw(y++, 0, "best %.6g%s %.*s", q->rec[b].r.score, note, W - 40, str);
        }
        mvprintw(y++, 0, "time: warm-up %.0f s  forest %.1f s  evaluation %.0f s%s%s", q->t_warm,
                 q->t_forest, q->t_eval, q->stop_reason[0] ? "  done: " : "", q->stop_reason);
        if (p->jobs) {
            mvprintw(y++, 0, "scoring ahead: %d jobs, %d of %d done", p->njobs, p->jobs_done,
                     p->jobs_n);
            for (int i = 0; i < p->njobs && y < LINES - 2; i++, y++) {
                const job_view *v = &p->jobs[i];
                mvprintw(y, 0, "%c job %-2d %-4s step %3d/%-3d loss %10.5g %.*s",
                         i == shown ? '>' : ' ', i + 1, v->busy ? "" : "idle", v->step, v->steps,
                         v->step ? v->loss : NAN, W - 50, v->name);
            }
        }
        for (int i = q->n - 1; i >= 0 && y < LINES - 2; i--, y++) {
            const search_record *r = &q->rec[i];
            char str[SPACE_STRLEN];
            q->sp->format(&r->arch, str, sizeof str);
            mvprintw(y, 0, "%4d %-6s %10.5g %s %.*s", i + 1, search_phase_names[r->phase],
                     r->r.score, r->good ? "*" : " ", W - 26, str);
        }
    } else {
        mvprintw(y++, 0, "no search (search start ALGO at the prompt)");
    }
    attron(A_BOLD);
    mvprintw(LINES - 1, 0, "%-*.*s", W - 1, W - 1, p->msg);
    attroff(A_BOLD);
    refresh();
    p->last_draw = rm_seconds();
}

/* Keys: returns nonzero when the work in progress must stop. */
static int keys(panel *p)
{
    int ch;
    int stop = 0;
    while ((ch = getch()) != ERR) {
        switch (ch) {
        case 'q':
            p->quit = 1;
            stop = 1;
            break;
        case 'p':
            if (p->mode != MODE_IDLE)
                snprintf(p->msg, sizeof p->msg, "paused");
            p->mode = MODE_IDLE;
            stop = 1;
            break;
        case 's':
        case 'S':
            if (p->mode == MODE_IDLE) {
                p->mode = MODE_STEPS;
                p->steps_left = ch == 's' ? 1 : 10;
            }
            break;
        case 'i':
            /* done by the panel's loop, not inside a step */
            p->init_req = p->mode == MODE_IDLE;
            break;
        case 'j':
            p->sel = p->jobs ? (shown_job(p) + 1) % p->njobs : p->sel + 1;
            break;
        case 'r':
            if (p->mode == MODE_IDLE) {
                p->mode = MODE_SEARCH;
                snprintf(p->msg, sizeof p->msg, "searching (p pauses)");
            }
            break;
        case KEY_RESIZE:
            break;
        default:
            break;
        }
    }
    return stop;
}

/* Inside work: read the keys, redraw when `every` seconds have passed;
 * nonzero when the work must stop. */
static int tick(panel *p, double every)
{
    int stop = keys(p);
    if (rm_seconds() - p->last_draw > every)
        draw(p);
    return stop || p->too_small || g_term;
}

/* after every training step of an evaluation made alone */
static int hook(const rmi_eval *e, void *user)
{
    panel *p = user;
    p->live = e;
    const int stop = tick(p, 0.1);
    p->live = NULL;
    return stop;
}

/* jobs > 1: the search's evaluations scored ahead, several at once */
static int watch(const job_view *jobs, int njobs, int done, int n, void *user)
{
    panel *p = user;
    p->jobs = jobs;
    p->njobs = njobs;
    p->jobs_done = done;
    p->jobs_n = n;
    const int stop = tick(p, 0.09);
    p->jobs = NULL;
    p->njobs = 0;
    return stop;
}

/* after each evaluation of the search */
static int evaluated(const session *s, void *user)
{
    (void)s;
    panel *p = user;
    return tick(p, 0.05) || p->mode != MODE_SEARCH;
}

int panel_run(shell *sh)
{
    session *s = &sh->s;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return rm_error("the panel needs a terminal");
    panel p = {.sh = sh};
    struct sigaction sa, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    g_term = 0;
    g_interrupt = &s->interrupt;
    sigaction(SIGTERM, &sa, &old_term);
    if (!initscr()) {
        sigaction(SIGTERM, &old_term, NULL);
        return rm_error("cannot start curses (TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    s->step_hook = hook;
    s->jobs_hook = watch;
    s->hook_user = &p;
    int err = 0;
    snprintf(p.msg, sizeof p.msg, "ready");
    while (!p.quit && !s->interrupt && !g_term && !p.too_small && !err) {
        draw(&p);
        if (p.too_small)
            break;
        keys(&p);
        if (p.quit)
            break;
        if (p.init_req) {
            p.init_req = 0;
            if (session_student_init(s) < 0)
                snprintf(p.msg, sizeof p.msg, "init: %s", rm_last_error());
            else
                snprintf(p.msg, sizeof p.msg, "a fresh student");
        }
        if (p.mode == MODE_STEPS) {
            int rc = session_student_step(s, 1, NULL, NULL);
            if (rc < 0) {
                snprintf(p.msg, sizeof p.msg, "step: %s", rm_last_error());
                p.mode = MODE_IDLE;
            } else if (--p.steps_left <= 0) {
                p.mode = MODE_IDLE;
            }
        } else if (p.mode == MODE_SEARCH) {
            /* to the end, or until a key stops it: all of it at once, so that
             * jobs > 1 score ahead */
            int rc = session_search_step(s, -1, evaluated, &p);
            if (rc < 0) {
                snprintf(p.msg, sizeof p.msg, "search: %s", rm_last_error());
                p.mode = MODE_IDLE;
            } else if (rc == 2) {
                sarch sa;
                char str[SPACE_STRLEN], note[96] = "";
                if (search_answer(&s->srch, &sa) == 0) {
                    shell_search_arch(s, &sa, str, note);
                    snprintf(p.msg, sizeof p.msg, "done: %s%s", str, note);
                }
                p.mode = MODE_IDLE;
            } else if (rc == 1 && p.mode == MODE_SEARCH && !p.quit) {
                p.mode = MODE_IDLE; /* stopped by a key */
            }
        } else {
            napms(50);
        }
    }
    s->step_hook = NULL;
    s->jobs_hook = NULL;
    s->hook_user = NULL;
    int cols = COLS, lines = LINES;
    endwin();
    sigaction(SIGTERM, &old_term, NULL);
    g_interrupt = NULL;
    if (g_term) {
        /* the terminal is back: end as SIGTERM asked */
        signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
    }
    if (p.too_small)
        return rm_error("the window is %dx%d; the panel needs at least %dx%d", cols, lines,
                        MIN_COLS, MIN_LINES);
    if (s->interrupt)
        printf("interrupted: work paused%s\n",
               s->srch.scored.slot ? " ('search run' or 'panel' then r continues the search)"
                                   : "");
    return 0;
}
