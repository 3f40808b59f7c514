// Package eval holds the classification protocols that measure a backbone's
// features: DINO's weighted k-nearest-neighbour classifier (KNN), a linear
// probe on frozen precomputed features (Linear, the "fast mode" of the
// linear protocol) and the label subsets of semi-supervised evaluation
// (StratifiedSubset, ParseSubsetList, MatchSubset).
//
// Every protocol works on Features: a row-major float32 matrix of one
// feature vector per image with its class label, as the evaluation pipeline
// extracts them. The package is plain Go over slices (no gorgonia, no Beam),
// so a protocol is a function call that the pipeline, the command line and
// the tests share. Matrix products go through gonum's BLAS and the kNN
// search runs over the test set in parallel chunks, one worker per
// GOMAXPROCS.
//
// Accuracies are percentages, as DINO and the paper print them. Top-5 is
// reported only when there are at least 5 classes (HasTop5); with fewer it
// is not defined.
//
// The protocols are checked against independent expectations: kNN votes and
// accuracies against DINO's knn_classifier run in torch 1.13
// (testdata/gen_knn.py), the linear probe's weights against the same
// training loop written in torch (testdata/gen_linear.py), and both on
// Fashion-MNIST raw pixels against the published raw-pixel baselines
// (linear 84.0, 20-NN 84.6 top-1).
//
// The semi-supervised protocol itself (fine-tuning the backbone on 1% / 10%
// of the labels) lives with the trainer; this package only chooses the
// labelled images.
package eval
