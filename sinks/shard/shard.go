// Package shard writes and reads sslight's training shards: WebDataset-style
// POSIX tar files holding, per sample and in this order, either the views
// of one image (a views sample)
//
//	<key>.json        metadata object (bytes given by the caller)
//	<key>.global.npy  uint8 [G, H, W, 3] global crops
//	<key>.local.npy   uint8 [L, h, w, 3] local crops
//
// or the image itself (an image sample, from which the trainer renders
// views)
//
//	<key>.json        metadata object
//	<key>.image.npy   uint8 [H, W, 3] decoded RGB image
//
// so PyTorch users can read them with tarfile + numpy.load or webdataset.
//
// The tar is byte-deterministic: every member has mode 0644, uid/gid 0,
// empty user and group names and modification time 0 (the Unix epoch), in
// USTAR format. PAX records appear only for member names USTAR cannot hold
// (over 100 bytes or non-ASCII). Same samples in the same order ⇒ identical
// bytes and CRC32C.
//
// Shards are named by UUIDv5 of (config hash, epoch, shard index), see Name,
// and laid out as <out>/epoch-%04d/<uuid>.tar, so a retried write lands on
// the same name. Writes are atomic (see storage.Create).
package shard

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Errors this package returns; match them with errors.Is.
var (
	// ErrInvalidSample: a sample the writer refused (bad key, shapes, JSON).
	// Nothing was written; the writer stays usable.
	ErrInvalidSample = errors.New("shard: invalid sample")
	// ErrEmpty: closing a writer that holds no samples.
	ErrEmpty = errors.New("shard: no samples")
	// ErrCorrupt: the shard is not a well-formed sslight shard.
	ErrCorrupt = errors.New("shard: corrupt")
	// ErrMismatch: the shard's size or CRC32C differs from the expected one.
	ErrMismatch = errors.New("shard: size or checksum mismatch")
)

// Member name suffixes, after "<key>.".
const (
	extMeta   = "json"
	extGlobal = "global.npy"
	extLocal  = "local.npy"
	extImage  = "image.npy"
)

// MaxKeyLen bounds a sample key in bytes. Longer keys than fit a USTAR name
// field (100 bytes with the ".global.npy" suffix) are written with a PAX
// record.
const MaxKeyLen = 200

// MaxMetaLen bounds the JSON metadata of one sample.
const MaxMetaLen = 1 << 20

// Channels is the last dimension of every crop array: interleaved RGB.
const Channels = 3

// Views is a stack of equally sized RGB crops, the [Count, Height, Width, 3]
// uint8 array stored in one .npy member. Pix is C-ordered: view, row,
// column, channel (what augment.Image.Tight gives for one view).
type Views struct {
	Count, Height, Width int
	Pix                  []uint8
}

// Shape returns the numpy shape of v.
func (v Views) Shape() []int { return []int{v.Count, v.Height, v.Width, Channels} }

// Image is one decoded RGB image, the uint8 [Height, Width, 3] array of an
// image sample's <key>.image.npy. Pix is C-ordered: row, column, channel.
type Image struct {
	Height, Width int
	Pix           []uint8
}

// Shape returns the numpy shape of m.
func (m Image) Shape() []int { return []int{m.Height, m.Width, Channels} }

// Sample is one training example: its key, metadata and either its crops
// (a views sample) or its image (an image sample: Image.Height > 0, no
// views).
type Sample struct {
	// Key names the sample inside the shard; see ValidateKey.
	Key string
	// Meta is a JSON object describing the sample (source URI, label, …);
	// it is stored verbatim as <key>.json.
	Meta   []byte
	Global Views // G ≥ 1 global crops (views samples)
	Local  Views // L ≥ 0 local crops (views samples)
	Image  Image // the image (image samples)
}

// IsImage reports whether s is an image sample.
func (s *Sample) IsImage() bool {
	return s.Image.Height > 0 || s.Image.Width > 0 || len(s.Image.Pix) > 0
}

// ValidateKey checks that key can be a WebDataset sample key: 1 to MaxKeyLen
// bytes of UTF-8 letters, digits, punctuation or symbols, with no '.', '/'
// or '\' (WebDataset cuts the key at the first dot of the basename) and no
// spaces or control characters.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidSample)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key %.40q… is %d bytes, at most %d", ErrInvalidSample, key, len(key), MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: key %q is not UTF-8", ErrInvalidSample, key)
	}
	for _, r := range key {
		if r == '.' || r == '/' || r == '\\' || unicode.IsSpace(r) || !unicode.IsGraphic(r) {
			return fmt.Errorf("%w: key %q contains %q (no dots, slashes, spaces or control characters)", ErrInvalidSample, key, r)
		}
	}
	return nil
}

// Validate checks s before anything is written: key, metadata and crop
// shapes. Errors wrap ErrInvalidSample.
func (s *Sample) Validate() error {
	if err := ValidateKey(s.Key); err != nil {
		return err
	}
	if err := validateMeta(s.Meta); err != nil {
		return fmt.Errorf("sample %s: %w", s.Key, err)
	}
	if s.IsImage() {
		if s.Global.Count != 0 || len(s.Global.Pix) != 0 || s.Local.Count != 0 || len(s.Local.Pix) != 0 {
			return fmt.Errorf("%w: sample %s has both an image and views", ErrInvalidSample, s.Key)
		}
		if err := s.Image.validate(); err != nil {
			return fmt.Errorf("sample %s: image: %w", s.Key, err)
		}
		return nil
	}
	if err := s.Global.validate(1); err != nil {
		return fmt.Errorf("sample %s: global views: %w", s.Key, err)
	}
	if err := s.Local.validate(0); err != nil {
		return fmt.Errorf("sample %s: local views: %w", s.Key, err)
	}
	return nil
}

func validateMeta(meta []byte) error {
	if len(meta) > MaxMetaLen {
		return fmt.Errorf("%w: metadata is %d bytes, at most %d", ErrInvalidSample, len(meta), MaxMetaLen)
	}
	if !json.Valid(meta) {
		return fmt.Errorf("%w: metadata is not valid JSON", ErrInvalidSample)
	}
	i := 0
	for i < len(meta) && (meta[i] == ' ' || meta[i] == '\t' || meta[i] == '\n' || meta[i] == '\r') {
		i++
	}
	if i == len(meta) || meta[i] != '{' {
		return fmt.Errorf("%w: metadata is not a JSON object", ErrInvalidSample)
	}
	return nil
}

func (v Views) validate(minCount int) error {
	if v.Count < minCount || v.Height < 1 || v.Width < 1 {
		return fmt.Errorf("%w: shape %v (need at least %d views of at least 1x1)", ErrInvalidSample, v.Shape(), minCount)
	}
	n, ok := pixLen(v.Count, v.Height, v.Width)
	if !ok {
		return fmt.Errorf("%w: shape %v overflows", ErrInvalidSample, v.Shape())
	}
	if len(v.Pix) != n {
		return fmt.Errorf("%w: shape %v needs %d bytes, Pix has %d", ErrInvalidSample, v.Shape(), n, len(v.Pix))
	}
	return nil
}

func (m Image) validate() error {
	if m.Height < 1 || m.Width < 1 {
		return fmt.Errorf("%w: shape %v (need at least 1x1)", ErrInvalidSample, m.Shape())
	}
	n, ok := pixLen(1, m.Height, m.Width)
	if !ok {
		return fmt.Errorf("%w: shape %v overflows", ErrInvalidSample, m.Shape())
	}
	if len(m.Pix) != n {
		return fmt.Errorf("%w: shape %v needs %d bytes, Pix has %d", ErrInvalidSample, m.Shape(), n, len(m.Pix))
	}
	return nil
}

// pixLen returns count*h*w*3 and whether it fits an int.
func pixLen(count, h, w int) (int, bool) {
	n := Channels
	for _, d := range [...]int{count, h, w} {
		if d < 0 || (d != 0 && n > math.MaxInt/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}
