// Package tbproto holds the Go types generated from event.proto, the subset
// of TensorBoard's Event and Summary messages sslight writes.
//
// Regenerate (protoc 3.21 from Debian's protobuf-compiler, protoc-gen-go at
// the module's google.golang.org/protobuf version):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./sinks/tensorboard/tbproto
package tbproto

//go:generate protoc --go_out=. --go_opt=paths=source_relative event.proto
