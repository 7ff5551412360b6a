/* The RMI score of an architecture (RMI-NAS section 1): a teacher-selected
 * batch, the teacher's stage features on it, and a fresh student trained on
 * that one batch with the RMI loss
 *   L = beta * sum_i (1 - CKA(student_i, teacher_i)) + (1 - beta) * CE,
 * the score being the loss of the last forward pass (lower is better). */
#ifndef RM_RMI_H
#define RM_RMI_H

#include <signal.h>
#include <stdint.h>

#include "io/cifar.h"
#include "models/model.h"

enum { RMI_LAYERS = 3 };

/* The version of the score's arithmetic. Raise it with any change that
 * moves a score in its last digits on the same machine and settings (a
 * kernel that sums in another order, a new default): score logs
 * (set score_log) name it, and a log of another version is refused. */
enum { RMI_NUMERICS = 1 };

typedef struct rmi_settings {
    int batch;           /* B = 32 */
    int gamma;           /* pool = gamma * B = 16 * 32 */
    double beta;         /* 0.8 */
    int steps;           /* 150 */
    double lr;           /* 0.1, constant */
    double momentum;     /* 0.9 */
    double wd;           /* 5e-4 */
    int centered;        /* 1: centered CKA (released code); 0: paper Eq. 3 */
    int teacher_bn;      /* 1: teacher BN in train mode (released code); 0: eval mode */
    uint64_t data_seed;  /* pool draw and its augmentation */
    uint64_t init_seed;  /* student initialization */
} rmi_settings;

void rmi_settings_default(rmi_settings *s);

/* The selected batch and the teacher's features on it, fixed for a search. */
typedef struct rmi_data {
    int n, nclass, hw;
    float *x;                    /* (n,3,hw,hw) normalized, host */
    int32_t *y;                  /* (n) */
    int *train_index;            /* (n) the training images chosen */
    double *teacher_ce;          /* (n) their teacher cross-entropy */
    float *gram[RMI_LAYERS];     /* (n,n) teacher Gram matrices, host */
    int pool;                    /* pool size */
    double pool_acc;             /* teacher top-1 on the pool */
    double pool_ce_mean;
    rmi_settings settings;       /* batch, gamma, teacher_bn, data_seed used */
} rmi_data;

/* Draw the pool, augment it once, run the teacher, keep the batch with the
 * lowest per-sample cross-entropy, and compute the teacher's Gram matrices.
 * The teacher's weights and running statistics are left unchanged. */
int rmi_select(rmi_data *d, model *teacher, const dataset *train, const rmi_settings *s);
/* The same from a given batch x (n,3,hw,hw normalized, hw the teacher's), labels y (n):
 * only the teacher's features and Gram matrices are computed. */
int rmi_data_from_batch(rmi_data *d, model *teacher, const float *x, const int32_t *y, int n,
                        const rmi_settings *s);
void rmi_data_free(rmi_data *d);

/* One student under training, driven a step at a time. */
typedef struct rmi_eval {
    model student;
    const rmi_data *data;
    rmi_settings s;
    int step;                    /* steps done */
    int diverged;                /* a non-finite loss was seen: score +inf */
    /* values of the last forward pass */
    double loss, ce, cka[RMI_LAYERS];
    /* per-step history (steps entries) */
    double *h_loss, *h_ce, *h_cka[RMI_LAYERS];
    float *gram, *dgram;         /* (n,n) scratch, host */
    float *kdev;                 /* (n,n) scratch, device */
    int32_t *labels;             /* (n) device copy of the batch labels */
    /* the device step (backends with softmax_ce_dev and cka: CUDA): the
     * whole loss on the device, one download of (ce, cka1..3) per step
     * (rmi_eval_step) or per RMI_AHEAD steps (a whole score), and
     * from the second step on the forward and backward halves replayed as
     * recordings (CUDA graphs) when the backend records */
    int device_step;
    float *ldev[RMI_LAYERS];     /* (n,n) teacher Gram matrices, device */
    float *dkdev;                /* (n,n) dLoss/dK, device */
    double *res;                 /* (1 + RMI_LAYERS) device: ce, cka */
    double *hist;                /* (steps, 1 + RMI_LAYERS) device: res of every step */
    void *rec_fwd, *rec_bwd;     /* the recorded halves, or NULL */
    int rec_failed;              /* recording failed once: op by op from then on */
} rmi_eval;

/* Build the student for arch, initialize it from s->init_seed and plan it. */
int rmi_eval_start(rmi_eval *e, const backend *be, const nb201_arch *arch,
                   const rmi_data *data, const rmi_settings *s);
/* The same with a student already built (any network whose model has the
 * three feature taps); e takes it over (freed with e, or on failure). */
int rmi_eval_start_model(rmi_eval *e, const backend *be, model *student, const rmi_data *data,
                         const rmi_settings *s);
/* One training step (forward, loss, backward, SGD). Returns 0, or -1 on an
 * error. A non-finite loss sets diverged and stops further steps. It waits
 * for the step's loss (a whole score, below, does not). */
int rmi_eval_step(rmi_eval *e);
/* The score: the loss of the last forward (+inf when diverged). */
double rmi_eval_score(const rmi_eval *e);
void rmi_eval_free(rmi_eval *e);

typedef struct rmi_result {
    double score, loss, ce, cka[RMI_LAYERS];
    double seconds;
    int steps, diverged;
} rmi_result;

/* The whole evaluation: start, s->steps steps, free. interrupt (may be NULL)
 * is polled between steps: when set, returns 1 with the partial result. */
int rmi_score(const backend *be, const nb201_arch *arch, const rmi_data *data,
              const rmi_settings *s, rmi_result *r, volatile sig_atomic_t *interrupt);
/* The same, calling cb (may be NULL) after every step; a nonzero return
 * stops the evaluation as an interrupt does. With the device step, steps
 * after the first are queued RMI_AHEAD at a time without waiting for the
 * host: cb then sees them in bursts, and a stop (or interrupt) takes effect
 * at the end of the burst (the score's steps say how many ran). */
enum { RMI_AHEAD = 16 };
typedef int (*rmi_step_fn)(const rmi_eval *e, void *user);
int rmi_score_cb(const backend *be, const nb201_arch *arch, const rmi_data *data,
                 const rmi_settings *s, rmi_result *r, volatile sig_atomic_t *interrupt,
                 rmi_step_fn cb, void *user);
/* The same for a student already built (taken over, as rmi_eval_start_model). */
int rmi_score_model(const backend *be, model *student, const rmi_data *data,
                    const rmi_settings *s, rmi_result *r, volatile sig_atomic_t *interrupt,
                    rmi_step_fn cb, void *user);

#endif
