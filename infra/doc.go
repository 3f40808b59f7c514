// Package infra holds sslight's deployment files (infra/Dockerfile, the
// Dataflow flex template, the Flink job-server setup, the Kubernetes CronJob
// for retrain) and the offline checks that keep them in step with the code.
//
// Nothing here can reach a cloud or a container daemon, so the tests check
// what can be checked without one: every manifest parses strictly, the flags
// the manifests pass exist in cmd/sslight (read with go/parser), the
// Dockerfile installs the libraries the build tags link and agrees with the
// Makefile and .ci/run, and the scripts behave as documented against stub
// docker/gcloud commands. See README.md for what was not run.
//
// The small parsers here (a Dockerfile reader, a shell-word splitter, an
// apt-get install scanner) read only what these checks need; they are not
// general-purpose.
package infra
