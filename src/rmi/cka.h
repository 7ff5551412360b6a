/* Linear CKA / nHSIC between two feature batches (RMI-NAS step 4, the
 * similarity of one teacher/student feature pair).
 *
 * Host-side math on small n x n Gram matrices (n = batch size, typically 32),
 * everything accumulated in double. For features X (n x p) and Y (n x q),
 * flattened per sample, K = X X^T and L = Y Y^T; the cost after the Gram
 * products does not depend on p, q.
 *
 * Centered (the released code, default):
 *   CKA = <HKH, HLH>_F / (||HKH||_F ||HLH||_F),  H = I - 11^T/n,
 * computed as RMI_torch.tensor_center_gram does: column means m of the Gram,
 * grand mean g, Kc_ij = K_ij - m_i - m_j + g (here in double throughout; the
 * reference rounds each subtraction to float32, a difference of ~1e-7).
 * Uncentered (the paper's Eq. 3):
 *   CKA = <K, L>_F / (||K||_F ||L||_F).
 * Both lie in [0, 1] for Gram matrices (positive semi-definite K, L).
 */
#ifndef RM_CKA_H
#define RM_CKA_H

/* Linear CKA between two Gram matrices K, L (n x n, row-major, float,
 * symmetric). centered != 0: the centered form above; centered == 0: Eq. 3.
 *
 * If dK != NULL, writes dCKA/dK (n x n float), the gradient with respect to
 * every entry of K treated as independent (NOT symmetrized). With
 * A = Lc/(|Kc||Lc|) - cka*Kc/|Kc|^2 (Kc = K, Lc = L when uncentered):
 *   centered:   dK = H A H,
 *   uncentered: dK = A.
 *
 * A zero-norm Gram (e.g. all-zero features) gives NaN (0/0), as the reference
 * does; dK is then all NaN. Returns -1.0 (with rm_error) on invalid arguments
 * (n <= 0, K or L NULL); a valid result is never negative. */
double cka_from_grams(int n, const float *K, const float *L, int centered, float *dK);

/* The Gram matrices themselves come from the backend (backend.h gram,
 * gram_backward), so they stay on the device. */

#endif
