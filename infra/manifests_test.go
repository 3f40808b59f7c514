package infra

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The keys Dataflow's TemplateMetadata and ParameterMetadata messages have
// (Dataflow API v1b3, as in the Cloud SDK's generated client). JSON keys
// are matched exactly here: encoding/json alone would accept "helptext".
var (
	templateKeys  = []string{"name", "description", "streaming", "supportsAtLeastOnce", "supportsExactlyOnce", "defaultStreamingMode", "parameters", "yamlDefinition"}
	parameterKeys = []string{"name", "label", "helpText", "isOptional", "regexes", "paramType", "customMetadata", "defaultValue", "enumOptions", "groupName", "parentName", "parentTriggerValues", "hiddenUi"}
	paramTypes    = []string{"DEFAULT", "TEXT", "GCS_READ_BUCKET", "GCS_WRITE_BUCKET", "GCS_READ_FILE", "GCS_WRITE_FILE", "GCS_READ_FOLDER", "GCS_WRITE_FOLDER", "PUBSUB_TOPIC", "PUBSUB_SUBSCRIPTION", "BIGQUERY_TABLE", "JAVASCRIPT_UDF_FILE", "SERVICE_ACCOUNT", "MACHINE_TYPE", "KMS_KEY_NAME", "WORKER_REGION", "WORKER_ZONE", "BOOLEAN", "ENUM", "NUMBER", "KAFKA_TOPIC", "KAFKA_READ_TOPIC", "KAFKA_WRITE_TOPIC"}
)

type templateParameter struct {
	Name       string   `json:"name"`
	Label      string   `json:"label"`
	HelpText   string   `json:"helpText"`
	IsOptional bool     `json:"isOptional"`
	Regexes    []string `json:"regexes"`
	ParamType  string   `json:"paramType"`
}

// flexExcluded are prepare's flags that the template deliberately does not
// offer, with the reason.
var flexExcluded = map[string]string{
	"quiet": "the entry script always passes it: a progress bar in launcher logs is noise",
	"set":   "repeatable, and a template parameter carries one value: put overrides in a config",
}

// flexRequired are the parameters a template launch must give: prepare
// refuses to run without --config and --out (prepare.go), and on Dataflow
// the source must be named (the config's default is a local path).
var flexRequired = []string{"config", "source", "out"}

// TestFlexTemplateMetadata: metadata.json parses strictly, and its
// parameters are exactly prepare's flags less the documented exclusions,
// with regexes that accept and refuse what the flags do.
func TestFlexTemplateMetadata(t *testing.T) {
	raw := readRepoFile(t, "infra/dataflow/metadata.json")
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("metadata.json: %v", err)
	}
	checkKeys(t, "metadata.json", top, templateKeys)
	var name string
	if err := json.Unmarshal(top["name"], &name); err != nil || name == "" {
		t.Errorf("metadata.json: name %q (%v): Dataflow requires one", name, err)
	}
	var rawParams []map[string]json.RawMessage
	if err := json.Unmarshal(top["parameters"], &rawParams); err != nil {
		t.Fatalf("metadata.json parameters: %v", err)
	}
	params := map[string]templateParameter{}
	for i, rp := range rawParams {
		checkKeys(t, "metadata.json parameter "+strconv.Itoa(i), rp, parameterKeys)
		b, _ := json.Marshal(rp)
		var p templateParameter
		strict := json.NewDecoder(bytes.NewReader(b))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&p); err != nil {
			t.Errorf("parameter %d: %v", i, err)
			continue
		}
		// gcloud refuses a parameter without these three.
		if p.Name == "" || p.Label == "" || p.HelpText == "" {
			t.Errorf("parameter %d (%q) lacks name, label or helpText", i, p.Name)
		}
		if _, dup := params[p.Name]; dup {
			t.Errorf("parameter %q declared twice", p.Name)
		}
		if p.ParamType != "" && !contains(paramTypes, p.ParamType) {
			t.Errorf("parameter %q: paramType %q is none of Dataflow's", p.Name, p.ParamType)
		}
		for _, re := range p.Regexes {
			if _, err := regexp.Compile(re); err != nil {
				t.Errorf("parameter %q: regex %q: %v", p.Name, re, err)
			}
		}
		params[p.Name] = p
	}

	prep := sslightCommands(t)["prepare"]
	if prep == nil {
		t.Fatal("cmd/sslight registers no prepare command")
	}
	for _, n := range sortedKeys(flexExcluded) {
		if _, ok := prep.Flags[n]; !ok {
			t.Errorf("flexExcluded names --%s, which prepare no longer has", n)
		}
	}
	for _, n := range flagNames(prep.Flags) {
		_, excluded := flexExcluded[n]
		if _, ok := params[n]; !ok && !excluded {
			t.Errorf("prepare has --%s (%s) but metadata.json has no such parameter", n, prep.Flags[n].Pos)
		}
	}
	for _, n := range sortedKeys(params) {
		if _, ok := prep.Flags[n]; !ok {
			t.Errorf("metadata.json parameter %q is no flag of sslight prepare", n)
		}
		if _, excluded := flexExcluded[n]; excluded {
			t.Errorf("metadata.json offers %q, which flexExcluded says it must not", n)
		}
		if want := !contains(flexRequired, n); params[n].IsOptional != want {
			t.Errorf("parameter %q: isOptional=%v, want %v", n, params[n].IsOptional, want)
		}
	}

	// What each kind of flag accepts, independent of the regexes written.
	samples := map[string]struct{ good, bad []string }{
		"int":  {[]string{"2", "16"}, []string{"two", "-1", "1.5", ""}},
		"bool": {[]string{"true", "false"}, []string{"yes", "1", ""}},
	}
	byName := map[string]struct{ good, bad []string }{
		"format":  {[]string{"imagenet", "coco", "idx", "folder"}, []string{"png", "IMAGENET", ""}},
		"source":  {[]string{"gs://bucket/imagenet/train", "gs://my-bucket"}, []string{"/data/train", "s3://b/x", "gs://"}},
		"out":     {[]string{"gs://bucket/shards/run-1"}, []string{"/tmp/out", "gs:/bucket"}},
		"subset":  {[]string{"gs://bucket/semi_1percent.txt"}, []string{"/local/semi.txt"}},
		"seed":    {[]string{"0", "4294967295"}, []string{"-3", "x"}},
		"config":  {[]string{"dino_cnn_sslight", "/opt/sslight/configs/my.yaml"}, []string{"", "a b"}},
		"epochs":  {[]string{"1", "200"}, []string{"0"}},
		"workers": {[]string{"0", "8"}, nil},
	}
	for n, p := range params {
		cases, ok := byName[n]
		if !ok {
			cases = samples[prep.Flags[n].Kind]
		}
		for _, v := range cases.good {
			if !matchesAll(p.Regexes, v) {
				t.Errorf("parameter %q refuses %q", n, v)
			}
		}
		for _, v := range cases.bad {
			if matchesAll(p.Regexes, v) {
				t.Errorf("parameter %q accepts %q", n, v)
			}
		}
	}
}

func checkKeys(t *testing.T, where string, obj map[string]json.RawMessage, allowed []string) {
	t.Helper()
	for k := range obj {
		if !contains(allowed, k) {
			t.Errorf("%s: unknown key %q (Dataflow knows %v)", where, k, allowed)
		}
	}
}

func matchesAll(regexes []string, v string) bool {
	for _, re := range regexes {
		if !regexp.MustCompile(re).MatchString(v) {
			return false
		}
	}
	return true
}

// TestFlexTemplateGcloud runs the Cloud SDK's own template-spec builder on
// metadata.json with --print-only, which validates and prints without
// contacting Google Cloud.
func TestFlexTemplateGcloud(t *testing.T) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		t.Skip("gcloud is not installed; the Cloud SDK's own check of metadata.json is skipped")
	}
	// It needs no network; the timeout guards against one that hangs trying.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gcloud, "dataflow", "flex-template", "build", "gs://example-bucket/templates/sslight-prepare.json",
		"--image=example.invalid/sslight-flex:test", "--sdk-language=GO",
		"--metadata-file="+filepath.Join(repoRoot(t), "infra", "dataflow", "metadata.json"), "--print-only")
	cmd.Env = append(os.Environ(),
		"CLOUDSDK_CONFIG="+t.TempDir(), // never the user's configuration
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gcloud flex-template build --print-only: %v\n%s", err, stderr.String())
	}
	// It prints the container spec as a YAML block scalar of JSON.
	out := stdout.String()
	out = out[strings.Index(out, "{"):]
	var spec struct {
		Image    string `json:"image"`
		Metadata struct {
			Parameters []templateParameter `json:"parameters"`
		} `json:"metadata"`
		SDKInfo struct {
			Language string `json:"language"`
		} `json:"sdkInfo"`
	}
	if err := json.Unmarshal([]byte(out), &spec); err != nil {
		t.Fatalf("gcloud output: %v\n%s", err, stdout.String())
	}
	var want []templateParameter
	var meta struct {
		Parameters []templateParameter `json:"parameters"`
	}
	if err := json.Unmarshal(readRepoFile(t, "infra/dataflow/metadata.json"), &meta); err != nil {
		t.Fatal(err)
	}
	want = meta.Parameters
	if spec.Image != "example.invalid/sslight-flex:test" || spec.SDKInfo.Language != "GO" || !reflect.DeepEqual(spec.Metadata.Parameters, want) {
		t.Errorf("gcloud's container spec differs from metadata.json: image %q, language %q, %d parameters (want %d)",
			spec.Image, spec.SDKInfo.Language, len(spec.Metadata.Parameters), len(want))
	}
}
