package cocosynth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sslight-go/sslight/sinks/storage"
)

// AnnotationsPath is where a split's instances file lies under the data
// set root, as in COCO 2017.
func AnnotationsPath(split string) string { return "annotations/instances_" + split + ".json" }

// AnnotationsJSON encodes the instances file (compact, one trailing
// newline; the bytes depend only on the set).
func (s *Set) AnnotationsJSON() ([]byte, error) {
	b, err := json.Marshal(s.Dataset)
	if err != nil {
		return nil, fmt.Errorf("cocosynth: encode the annotations of split %s: %w", s.Split, err)
	}
	return append(b, '\n'), nil
}

// Write stores the set under root (a local folder, gs:// or memfs://
// prefix) in the COCO layout: root/<split>/<file_name> for every image and
// root/annotations/instances_<split>.json, the annotations last so that a
// reader never finds annotations naming images not yet written.
func (s *Set) Write(ctx context.Context, root string) error {
	for i, im := range s.Dataset.Images {
		uri := storage.Join(root, s.Split, im.FileName)
		if err := storage.WriteFile(ctx, uri, s.PNG[i]); err != nil {
			return fmt.Errorf("cocosynth: write %s: %w", uri, err)
		}
	}
	b, err := s.AnnotationsJSON()
	if err != nil {
		return err
	}
	uri := storage.Join(root, AnnotationsPath(s.Split))
	if err := storage.WriteFile(ctx, uri, b); err != nil {
		return fmt.Errorf("cocosynth: write %s: %w", uri, err)
	}
	return nil
}
