package shard

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/sslight-go/sslight/sinks/storage"
)

// Namespace is the UUID namespace of sslight shard names. It is itself
// uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/sslight-go/sslight/shard")),
// written out so it can never drift.
const Namespace = "9d4ff65c-c8a6-5039-991a-9bb4d404e3e8"

var namespace = uuid.MustParse(Namespace)

// NameData returns the exact bytes hashed into a shard's UUIDv5:
//
//	sslight-shard-v1|<configHash>|<epoch>|<index>
//
// with epoch and index in decimal. Python reproduces a name with
// uuid.uuid5(uuid.UUID(Namespace), NameData(...)).
func NameData(configHash string, epoch, index int) string {
	return fmt.Sprintf("sslight-shard-v1|%s|%d|%d", configHash, epoch, index)
}

// Name returns the file name of shard index of epoch for a config hash:
// "<uuidv5>.tar". It depends on nothing else, so a retried or re-run write
// produces the same name.
func Name(configHash string, epoch, index int) string {
	return uuid.NewSHA1(namespace, []byte(NameData(configHash, epoch, index))).String() + ".tar"
}

// EpochDir returns the folder holding the shards of one epoch:
// <out>/epoch-%04d.
func EpochDir(out string, epoch int) string {
	return storage.Join(out, fmt.Sprintf("epoch-%04d", epoch))
}

// URI returns where shard index of epoch lives under out:
// <out>/epoch-%04d/<uuid>.tar.
func URI(out, configHash string, epoch, index int) string {
	return storage.Join(EpochDir(out, epoch), Name(configHash, epoch, index))
}

// ValidateConfigHash checks that h can name shards unambiguously: 1 to 128
// ASCII letters, digits, ':', '_' or '-' (a hex digest, optionally with an
// algorithm prefix such as "sha256:").
func ValidateConfigHash(h string) error {
	if h == "" || len(h) > 128 {
		return fmt.Errorf("shard: config hash %.20q must be 1 to 128 bytes", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ':' || c == '_' || c == '-') {
			return fmt.Errorf("shard: config hash %q contains %q", h, c)
		}
	}
	return nil
}

// Info describes one written shard; the manifest lists them.
type Info struct {
	URI     string `json:"uri"`  // full location
	Name    string `json:"name"` // "<uuid>.tar"
	Epoch   int    `json:"epoch"`
	Index   int    `json:"index"`
	Samples int    `json:"samples"`
	Bytes   int64  `json:"bytes"`
	CRC32C  uint32 `json:"crc32c"`
	// CRC32CBase64 is CRC32C as GCS shows it (gsutil hash -c, object
	// metadata): base64 of the big-endian bytes.
	CRC32CBase64 string `json:"crc32c_base64"`
	ConfigHash   string `json:"config_hash"`
}
