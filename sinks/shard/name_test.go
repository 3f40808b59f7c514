package shard

import (
	"testing"

	"github.com/google/uuid"
)

func TestNamespaceDerivation(t *testing.T) {
	got := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/sslight-go/sslight/shard")).String()
	if got != Namespace {
		t.Fatalf("Namespace = %s, its documented derivation gives %s", Namespace, got)
	}
}

func TestName(t *testing.T) {
	// Expected names from Python:
	//   uuid.uuid5(uuid.UUID(Namespace), "sslight-shard-v1|%s|%d|%d" % (h, e, i))
	tests := []struct {
		hash         string
		epoch, index int
		want         string
	}{
		{testHash, 0, 0, "a012f22f-e5ff-5835-85f2-18efb8d9e243.tar"},
		{testHash, 0, 1, "a12d069a-0dba-5417-bbc1-8bb60bc7755d.tar"},
		{testHash, 1, 0, "19716b2b-02bd-5cb0-b887-715d8e21c412.tar"},
		{"deadbeef", 199, 12345, "a44b89b8-b598-5c00-b928-be2983c4ccd6.tar"},
	}
	for _, tt := range tests {
		if got := Name(tt.hash, tt.epoch, tt.index); got != tt.want {
			t.Errorf("Name(%.8s…, %d, %d) = %s, want %s", tt.hash, tt.epoch, tt.index, got, tt.want)
		}
	}
}

func TestURI(t *testing.T) {
	const name = "19716b2b-02bd-5cb0-b887-715d8e21c412.tar" // (testHash, 1, 0)
	tests := []struct{ out, want string }{
		{"/data/shards", "/data/shards/epoch-0001/" + name},
		{"rel/dir", "rel/dir/epoch-0001/" + name},
		{"gs://bucket/run1/", "gs://bucket/run1/epoch-0001/" + name},
		{"gs://bucket", "gs://bucket/epoch-0001/" + name},
		{"memfs://out", "memfs://out/epoch-0001/" + name},
		{"memfs:///abs", "memfs:///abs/epoch-0001/" + name},
	}
	for _, tt := range tests {
		if got := URI(tt.out, testHash, 1, 0); got != tt.want {
			t.Errorf("URI(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
	if got := EpochDir("gs://b", 12345); got != "gs://b/epoch-12345" {
		t.Errorf("EpochDir beyond 4 digits = %q", got)
	}
}

func TestValidateConfigHash(t *testing.T) {
	for _, ok := range []string{testHash, "sha256:" + testHash, "abc_DEF-1"} {
		if err := ValidateConfigHash(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a|b", "a b", "ä", string(make([]byte, 129))} {
		if err := ValidateConfigHash(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
