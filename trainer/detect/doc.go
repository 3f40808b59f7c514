// Package detect is the detection transfer protocol: a light single-stage
// detector in the style of CenterNet ("Objects as Points", Zhou et al.
// 2019) on a pre-trained CNN backbone's last feature map, fine-tuned on a
// COCO-format data set and scored with COCO's box AP.
//
// The head (Head) upsamples the feature map once (stride 8 → 4 for the
// small-image ResNets), applies a 3x3 convolution + ReLU and two 1x1
// convolutions: a class heatmap (sigmoid) and the box size and centre
// offset regressions. Training targets (Targets) are CenterNet's: a
// Gaussian of radius GaussianRadius at every object's centre cell, the
// box size in cells and the centre's sub-cell offset at that cell. The
// losses are gorgonia ops with hand-written gradients, checked against
// finite differences: FocalLossOp (CenterNet's penalty-reduced focal loss,
// α = 2, β = 4) and RegL1LossOp (L1 at the centres; size weighted 0.1).
// Train fine-tunes backbone and head together with AdamW or SGD (cosine
// schedule, random horizontal flips, fixed input size); Decode turns the
// outputs into boxes (3x3 max-pool peaks, top 100, boxes from size and
// offset); Predict writes COCO results and Score evaluates them with
// trainer/eval/cocoeval, pycocotools' COCOeval.
//
// Only boxes are predicted and scored (bbox AP); the head has no mask
// branch, so segm AP is not part of the protocol.
//
// Images are held in memory as 8-bit RGB at the input size, which suits
// the small synthetic sets of internal/datasets/cocosynth (1000 images of 96 px take
// 28 MB).
package detect
