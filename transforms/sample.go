package transforms

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SampleKey is the WebDataset key of an item: a readable form of the item's
// source key (letters, digits, '_' and '-' only: WebDataset splits keys at
// the first dot) plus 8 hex digits of its hash, so keys that sanitise alike
// stay distinct. It depends only on the source key, so the same image has
// the same sample key in every epoch and wherever the bucket lives.
func SampleKey(sourceKey string) string {
	var b strings.Builder
	for _, r := range sourceKey {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 80 {
			break
		}
	}
	sum := sha256.Sum256([]byte(sourceKey))
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(sum[:4]))
	return b.String()
}
