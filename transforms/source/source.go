// Package source lists the inputs of a preparation run: ImageNet-style class
// folders, COCO instances files with their images, MNIST-style IDX files
// and plain folders, from local paths, gs:// buckets or memfs://.
//
// Listing is plain Go (no Beam pipeline): the launcher calls List once and
// the pipeline fans the Items out. Every input List sees ends either as an
// Item or as a Rejection with a reason, so a run can account for all of
// them ("nothing lost"). Items come sorted by Key, which makes a listing,
// and everything derived from it, independent of the order storage
// returns objects in.
//
// Layouts:
//
//	imagenet  <root>/<class>/<file>       every file in a class folder (at any depth) is an item;
//	                                      label = index of <class> in the sorted class names
//	                                      (torchvision ImageFolder)
//	folder    <root>/**                   every file, unlabeled
//	coco      <root>/annotations/instances_<split>.json and <root>/<split>/<file_name>
//	idx       <root>/<split>-images-idx3-ubyte[.gz] (+ <split>-labels-idx1-ubyte[.gz]),
//	          or the images file's own URI; one item per record
//
// Only regular files count, found as torchvision's ImageFolder finds them
// (os.walk with followlinks=True): links to folders are followed (a class
// folder may be a link), links to files are followed only when they point
// inside the source — a link out of it is rejected, never read — and
// sockets, devices and pipes are skipped (reading a pipe would block a
// worker). A local class folder holding no file is an error, as
// ImageFolder raises on one; on object stores a folder is a name prefix,
// so an empty one does not exist.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Formats List understands.
const (
	FormatImageNet = "imagenet"
	FormatCOCO     = "coco"
	FormatIDX      = "idx"
	FormatFolder   = "folder"
)

// Stages a Rejection can come from.
const (
	StageList       = "list"       // the listing itself: layout, missing or unreadable objects
	StageSubset     = "subset"     // a subset file entry that names no object
	StageAnnotation = "annotation" // a COCO record refused by coco.Check
)

// Item is one training input: one image object, or one record of an IDX file.
type Item struct {
	URI   string `json:"uri"`   // full object URI (gs://b/train/n01/x.JPEG or /abs/path)
	Key   string `json:"key"`   // stable id relative to the source root: "n01440764/n01440764_10026.JPEG", "train-images-idx3-ubyte.gz#000123"
	Index int    `json:"index"` // record index inside URI for IDX; -1 otherwise
	Label int    `json:"label"` // class index; -1 when unlabeled
	Size  int64  `json:"size"`  // object size in bytes (IDX: the file's size)
	MTime int64  `json:"mtime"` // last modified, unix nanoseconds; 0 when the filesystem cannot tell
	// Generation is the GCS object generation (0 elsewhere): unlike MTime it
	// changes on every overwrite, so it identifies the exact bytes listed.
	Generation int64 `json:"generation,omitempty"`
	// Meta is format-specific. COCO: {"image_id","width","height","annotations":[...]}
	// with the image's accepted annotations in the coco.Annotation form.
	Meta json.RawMessage `json:"meta,omitempty"`
}

// Rejection is an input refused while listing. It still counts as a dead
// letter; IsItem says whether it counts as an input (a file outside any
// class folder, a missing image) or is a refused annotation of an input
// that is otherwise listed.
type Rejection struct {
	URI    string `json:"uri"`
	Key    string `json:"key"`
	Stage  string `json:"stage"`
	Error  string `json:"error"`
	IsItem bool   `json:"is_item"`
}

// Listing is the result of List.
type Listing struct {
	Format   string      `json:"format"` // imagenet | coco | idx | folder
	Root     string      `json:"root"`   // the root as listed: absolute for local paths, no trailing slash
	Classes  []string    `json:"classes,omitempty"`
	Items    []Item      `json:"items"`
	Rejected []Rejection `json:"rejected,omitempty"`
}

// Options tune List.
type Options struct {
	// Split names the part of the data set: COCO reads
	// annotations/instances_<Split>.json and <Split>/ (default "train2017");
	// IDX reads <Split>-images-idx3-ubyte[.gz] (default "train"; Fashion-MNIST's
	// test split is "t10k").
	Split string
	// SubsetFile (imagenet only) keeps only the files it lists, one per line:
	// a bare file name ("n01440764_10026.JPEG", as SimCLR and DINO publish
	// the 1% / 10% splits) or SSLight's "index,label,wnid,file name" lines
	// (classification/data/imagenet_subsets/semi_*percent.txt), where only
	// the last two fields are used. Blank lines are skipped.
	SubsetFile string
	// Limit keeps only the first Limit items after sorting (0: all).
	Limit int
}

// ErrFormat is returned (wrapped) for an unknown format name.
var ErrFormat = errors.New("unknown source format")

// ErrLayout is returned (wrapped) when the root does not hold the layout the
// format expects: no class folders, no annotations file, no IDX files.
var ErrLayout = errors.New("source layout")

// List lists the inputs of one data set. format is one of FormatImageNet,
// FormatCOCO, FormatIDX or FormatFolder; root is a local path, a gs:// URI
// or a memfs:// URI.
func List(ctx context.Context, format, root string, opts Options) (*Listing, error) {
	if opts.Limit < 0 {
		return nil, fmt.Errorf("source: limit %d: must be 0 (all) or positive", opts.Limit)
	}
	r, err := normalizeRoot(root)
	if err != nil {
		return nil, err
	}
	if opts.SubsetFile != "" && format != FormatImageNet {
		return nil, fmt.Errorf("source: a subset file applies to the imagenet format, not %q", format)
	}
	var l *Listing
	switch format {
	case FormatImageNet:
		l, err = listImageNet(ctx, r, opts)
	case FormatFolder:
		l, err = listFolder(ctx, r)
	case FormatCOCO:
		l, err = listCOCO(ctx, r, opts)
	case FormatIDX:
		l, err = listIDX(ctx, r, opts)
	default:
		return nil, fmt.Errorf("source: %w %q (want %s, %s, %s or %s)", ErrFormat, format, FormatImageNet, FormatCOCO, FormatIDX, FormatFolder)
	}
	if err != nil {
		return nil, err
	}
	l.Format, l.Root = format, r
	slices.SortFunc(l.Items, func(a, b Item) int { return strings.Compare(a.Key, b.Key) })
	if opts.Limit > 0 && len(l.Items) > opts.Limit {
		l.Items = l.Items[:opts.Limit:opts.Limit]
	}
	if l.Items == nil {
		l.Items = []Item{}
	}
	return l, nil
}

// Inputs returns how many inputs the listing accounts for: its items plus
// the rejections that stand for inputs (IsItem).
func (l *Listing) Inputs() int {
	n := len(l.Items)
	for _, r := range l.Rejected {
		if r.IsItem {
			n++
		}
	}
	return n
}
