package source_test

import (
	"context"
	"fmt"

	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms/source"
)

// ExampleList lists an ImageNet-layout folder (in memory here; a local path
// or gs:// URI works the same). The stray file at the root is no input of
// any class, so it is rejected rather than dropped.
func ExampleList() {
	ctx := context.Background()
	for _, name := range []string{"n02/b.JPEG", "n01/a.JPEG", "n01/c.JPEG", "notes.txt"} {
		_ = storage.WriteFile(ctx, "memfs://example/train/"+name, []byte("…"))
	}
	l, err := source.List(ctx, source.FormatImageNet, "memfs://example/train", source.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("classes:", l.Classes)
	for _, it := range l.Items {
		fmt.Println(it.Key, it.Label)
	}
	for _, r := range l.Rejected {
		fmt.Println("rejected:", r.Key, "-", r.Error)
	}
	// Output:
	// classes: [n01 n02]
	// n01/a.JPEG 0
	// n01/c.JPEG 0
	// n02/b.JPEG 1
	// rejected: notes.txt - not inside a class folder: expected <root>/<class>/<image> (ImageNet layout)
}
