//go:build tools

// Package tools pins modules that sslight depends on before (or besides) any
// code imports them, so `go mod tidy` keeps them in go.mod: gorgonia for the
// trainer, and go4.org/unsafe/assume-no-moving-gc at its latest version
// (gorgonia v0.9.18's tensor package panics at start on Go >= 1.20 with the
// 2022 version it asks for).
package tools

import (
	_ "cloud.google.com/go/storage"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	_ "github.com/disintegration/imaging"
	_ "github.com/fsouza/fake-gcs-server/fakestorage"
	_ "github.com/google/uuid"
	_ "go4.org/unsafe/assume-no-moving-gc"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
	_ "gopkg.in/yaml.v3"
	_ "gorgonia.org/gorgonia"
)
