// Package onnx writes ONNX models: the protobuf messages of the official
// onnx.proto, generated with protoc-gen-go, and small builders that assemble
// a graph (nodes, initializers, inputs and outputs with their shapes,
// attributes) and a model around it (opset, metadata_props).
//
// onnx.proto is the file of ONNX release 1.12.0 (IR version 8, operator
// sets up to 17), byte for byte: the copy Debian's python3-onnx 1.12
// installs as /usr/lib/python3/dist-packages/onnx/onnx.proto (sha256
// a96f50c0fe1ff9180b6025843d4f7efcf53b024c83db55a36cd24a1e44345182, the
// same as onnx/onnx.proto at the tag v1.12.0). It is not edited: its Go
// package is set on protoc's command line with an M option (the generate
// line in gen.go). TestGeneratedCodeIsCurrent regenerates it
// into a temporary folder and compares when protoc and protoc-gen-go are
// installed.
//
// The builders know nothing of neural networks: trainer/nn, trainer/backbone
// and trainer/ssl emit their layers through them, and trainer/export puts
// the model together and writes it.
package onnx
