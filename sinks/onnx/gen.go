package onnx

// onnx.pb.go is generated from onnx.proto by protoc 3.21 (Debian's
// protobuf-compiler) with protoc-gen-go at the module's
// google.golang.org/protobuf version:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./sinks/onnx
//
// The M option gives onnx.proto its Go package without editing the file.
//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/sslight-go/sslight/sinks/onnx;onnx onnx.proto
