package transforms

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// ShardKey is the GroupByKey key of shard index of epoch. It sorts in
// (epoch, index) order.
func ShardKey(epoch, index int) string {
	return fmt.Sprintf("e%05d-s%06d", epoch, index)
}

// ParseShardKey is the inverse of ShardKey.
func ParseShardKey(key string) (epoch, index int, err error) {
	if _, err := fmt.Sscanf(key, "e%d-s%d", &epoch, &index); err != nil || ShardKey(epoch, index) != key {
		return 0, 0, fmt.Errorf("bad shard key %q: want e<epoch>-s<index>", key)
	}
	return epoch, index, nil
}

// sampleHash is the stable 64-bit hash of (seed, epoch, item key) that places
// an item in a shard and orders it inside the shard. It depends on nothing
// but its arguments, so every runner, worker count, bundle split and retry
// agrees on it, and each epoch gets a different shuffle.
func sampleHash(seed uint64, epoch int, key string) uint64 {
	h := sha256.New()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(epoch))
	h.Write([]byte("sslight/shard/v1\x00"))
	h.Write(b[:])
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return binary.LittleEndian.Uint64(h.Sum(sum[:0]))
}

// ShardOf returns the shard (in [0, shards)) that item key goes to in epoch.
func ShardOf(seed uint64, epoch int, key string, shards int) int {
	if shards <= 0 {
		panic(fmt.Sprintf("transforms.ShardOf: %d shards", shards))
	}
	return int(sampleHash(seed, epoch, key) % uint64(shards))
}

// ShardsPerEpoch is how many shards hold items samples of sampleBytes each
// when a shard should stay under shardBytes (at least one shard).
func ShardsPerEpoch(items int, sampleBytes, shardBytes int64) int {
	if items <= 0 {
		return 1
	}
	perShard := shardBytes / max(sampleBytes, 1)
	if perShard < 1 {
		perShard = 1
	}
	return int((int64(items) + perShard - 1) / perShard)
}
