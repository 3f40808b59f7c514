package checkpoint

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
)

// meta.json carries the config as a JSON object a person can read, and
// still reads the base64 form earlier releases wrote.
func TestMetaConfigIsReadableJSON(t *testing.T) {
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	canon := cfg.CanonicalJSON()
	b, err := json.Marshal(Meta{Method: "DINO", Config: canon})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"config":{"`) || strings.Contains(string(b), base64.StdEncoding.EncodeToString(canon[:12])) {
		t.Fatalf("meta.json does not hold the config as an object: %.200s", b)
	}
	for name, raw := range map[string][]byte{
		"object": b,
		"base64": []byte(`{"method":"DINO","config":"` + base64.StdEncoding.EncodeToString(canon) + `"}`),
	} {
		var m Meta
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := m.ParseConfig()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Hash() != cfg.Hash() {
			t.Errorf("%s: the config read back hashes to %s, want %s", name, got.Hash(), cfg.Hash())
		}
	}
	var m Meta
	if err := json.Unmarshal([]byte(`{"config":null}`), &m); err != nil || m.Config != nil {
		t.Errorf("null config: %v, %q", err, m.Config)
	}
	if _, err := json.Marshal(Meta{Config: ConfigJSON("not json")}); err == nil {
		t.Error("a config that is not JSON was written")
	}
}

// --weights reads student or teacher in any case, "" as the student, and
// refuses anything else naming it; each method's teacher prefix is where
// the trainer writes its second network.
func TestParseWeights(t *testing.T) {
	for in, want := range map[string]Weights{"": Student, "student": Student, "Teacher": Teacher, " teacher ": Teacher} {
		if got, err := ParseWeights(in); err != nil || got != want {
			t.Errorf("ParseWeights(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseWeights("ema"); err == nil || !strings.Contains(err.Error(), `"ema"`) {
		t.Errorf("ParseWeights(ema): %v", err)
	}
	for method, want := range map[string]string{"DINO": "teacher.", "MOCO": "key.", "SWAV": ""} {
		if got := TeacherPrefix(method); got != want {
			t.Errorf("TeacherPrefix(%s) = %q, want %q", method, got, want)
		}
	}
	if Weights("").OrStudent() != Student || Teacher.OrStudent() != Teacher {
		t.Error("OrStudent")
	}
}
