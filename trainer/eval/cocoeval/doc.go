// Package coco evaluates object detections and instance masks the way COCO
// does: it computes pycocotools' COCOeval (evaluate, accumulate, summarize)
// for bounding boxes and segmentation masks, value for value.
//
// Exactness is the point: published detection numbers (the paper's Mask
// R-CNN transfer results among them) are pycocotools' numbers, and a second
// implementation that differs in the fourth decimal cannot be compared with
// them. So every step follows pycocotools' semantics, including the ones
// that look accidental:
//
//   - results are loaded as COCO.loadRes loads them: for boxes the area is
//     width×height; for masks the area is the mask's pixel count and the box
//     is the mask's bounding box (detectron2 drops the box of segm results
//     before loading, and so does LoadResults for IoUSegm);
//   - polygons are rasterised as maskApi.c's rleFrPoly (vertices rounded to
//     a fifth of a pixel, pixel centres inside the traced outline), and the
//     parts of a multi-polygon object are merged;
//   - per image and category, detections are sorted by score with a stable
//     sort and cut at the largest maxDets; ground truth is sorted with
//     ignored objects (crowd regions, objects outside the area range) last;
//   - matching is greedy in score order with the IoU threshold capped at
//     1−1e-10, a crowd region may match any number of detections, and its
//     IoU is intersection over the detection's area;
//   - an unmatched detection outside the area range is ignored;
//   - precision is the interpolated (monotone envelope) precision at 101
//     recall points found with a left-sided search, −1 where a category has
//     no ground truth, and such entries are left out of the means.
//
// The entry points are LoadGroundTruth (or NewGroundTruth), LoadResults and
// Evaluate. Input problems are reported as *coco.PathError values of the
// sinks/coco package naming the file, the JSON path and the fault.
package cocoeval
