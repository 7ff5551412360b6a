/* CIFAR-10/100 binary batches as distributed, ImageNet16-120 in the same
 * layout, plus the batch-side pixel work: gathering, mean/std normalization
 * (ImageNet's for CIFAR, NAS-Bench-201's for ImageNet16) and crop + flip
 * augmentation. */
#ifndef RM_CIFAR_H
#define RM_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

enum { DATASET_MAX_FILES = 5 };

/* Images stay in the batch files, mapped read-only: only the images a
 * command touches become resident (a search touches its 512-image pool, not
 * the 150 MB of CIFAR-10). Labels are copied. */
typedef struct dataset {
    int n, c, h, w, nclass;
    int32_t *y;                                /* (n), in [0, nclass) */
    int nfiles;
    const uint8_t *map[DATASET_MAX_FILES];     /* file mappings */
    size_t maplen[DATASET_MAX_FILES];
    int first[DATASET_MAX_FILES + 1];          /* index of each file's first image */
    size_t rec, skip;                          /* record bytes, label bytes before the pixels */
    int pad;                                   /* crop padding of the augmentation */
    int rotate;                                /* its largest rotation in degrees (0: none) */
    const float *mean, *std;                   /* per-channel normalization */
} dataset;

/* Image i (c,h,w), planar RGB as in the files. */
const uint8_t *dataset_image(const dataset *d, int i);

/* CIFAR-10: DIR/data_batch_1..5.bin (train; a subset may stop after
 * data_batch_k, without gaps) or DIR/test_batch.bin; records of
 * 1 label byte + 3072 pixel bytes. CIFAR-100: DIR/train.bin or DIR/test.bin;
 * records of coarse byte, fine byte, 3072 pixel bytes; labels = fine (100
 * classes), normalized with CIFAR-100's training mean and std and augmented
 * with a random rotation of up to 15 degrees too, as the released RMI-NAS
 * code's CIFAR-100 loader (CIFAR-10: ImageNet's mean and std, crop and flip,
 * as its CIFAR-10 loader). Errors name the file and the byte offset. On
 * failure *out is empty. */
int cifar_load(const char *dir, int cifar100, int train, dataset *out);
/* ImageNet16-120 (NAS-Bench-201's 16x16 ImageNet, its first 120 classes):
 * DIR/train.bin or DIR/test.bin (the official validation images), records of
 * 1 label byte (0..119) + 768 pixel bytes (3 planes of 16x16, R, G, B), as
 * examples/imagenet16-to-bin writes them from the downsampled-ImageNet
 * pickles. Normalized with NAS-Bench-201's ImageNet16 mean and std; crop
 * padding 2. */
int imagenet16_load(const char *dir, int train, dataset *out);
/* Unmap the files, free the labels and zero *d. */
void dataset_free(dataset *d);
/* out (k,c,h,w) gets images idx[0..k), labels (k) their labels (may be NULL). */
void dataset_gather_u8(const dataset *d, const int *idx, int k, uint8_t *out, int32_t *labels);
/* The same for the images first..first+k-1. */
void dataset_range_u8(const dataset *d, int first, int k, uint8_t *out);
/* u8 (k,c,hw) -> float (k,c,hw) as (x/255 - mean[c]) / std[c] with ImageNet
 * mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), in float32 exactly
 * as torch computes ToTensor + Normalize. c <= 3. */
void data_normalize(const uint8_t *x, int k, int c, int hw, float *out);
/* The same with the dataset's own mean and std (CIFAR-10: ImageNet's). */
void dataset_normalize(const dataset *d, const uint8_t *x, int k, float *out);
/* u8 (k,c,h,w) -> u8 (k,c,h,w): per image draw flip = uniform < 0.5, then top i
 * and left j uniform in [0, 2*pad], all from r in that order; pad with zeros,
 * flip horizontally if drawn, crop h x w at (i, j). RandomHorizontalFlip then
 * RandomCrop(h, padding=pad, fill=0), as augment_u8 in the PyTorch reference. */
void data_augment(const uint8_t *x, int k, int c, int h, int w, int pad, rng *r, uint8_t *out);
/* u8 (k,c,h,w) -> u8 (k,c,h,w): per image an angle uniform in [-deg, deg]
 * from r, the image rotated by it about its centre, nearest neighbour, zeros
 * outside (torchvision's RandomRotation(deg) on the uint8 image). */
void data_rotate(const uint8_t *x, int k, int c, int h, int w, int deg, rng *r, uint8_t *out);
/* One image (c,h,w) rotated by the angle (degrees, counter-clockwise). */
void data_rotate_by(const uint8_t *x, int c, int h, int w, double degrees, uint8_t *out);
/* The dataset's augmentation: data_augment with its padding, then
 * data_rotate by its rotation where it has one (x is then overwritten). */
void dataset_augment(const dataset *d, uint8_t *x, int k, rng *r, uint8_t *out);

#endif
