package infra

import (
	"path"
	"strconv"
	"strings"
	"testing"
)

// The subset of the Kubernetes API that retrain-cronjob.yaml uses, field
// names as in k8s.io/api (batch/v1 CronJob, core/v1 ServiceAccount and
// PodSpec). Decoding with KnownFields makes a misspelt or misplaced field
// an error instead of a field the API server would drop or refuse.
type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type serviceAccount struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
}

type cronJob struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Schedule                   string `yaml:"schedule"`
		TimeZone                   string `yaml:"timeZone"`
		ConcurrencyPolicy          string `yaml:"concurrencyPolicy"`
		StartingDeadlineSeconds    *int64 `yaml:"startingDeadlineSeconds"`
		SuccessfulJobsHistoryLimit *int32 `yaml:"successfulJobsHistoryLimit"`
		FailedJobsHistoryLimit     *int32 `yaml:"failedJobsHistoryLimit"`
		Suspend                    *bool  `yaml:"suspend"`
		JobTemplate                struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     struct {
				BackoffLimit            *int32 `yaml:"backoffLimit"`
				ActiveDeadlineSeconds   *int64 `yaml:"activeDeadlineSeconds"`
				TTLSecondsAfterFinished *int32 `yaml:"ttlSecondsAfterFinished"`
				Template                struct {
					Metadata objectMeta `yaml:"metadata"`
					Spec     podSpec    `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName string            `yaml:"serviceAccountName"`
	RestartPolicy      string            `yaml:"restartPolicy"`
	NodeSelector       map[string]string `yaml:"nodeSelector"`
	SecurityContext    struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
		RunAsGroup   *int64 `yaml:"runAsGroup"`
		FSGroup      *int64 `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name     string `yaml:"name"`
		EmptyDir *struct {
			Medium    string `yaml:"medium"`
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type container struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	WorkingDir      string   `yaml:"workingDir"`
	Env             []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		Capabilities             struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// retrainFlags are the flags issue #7 gives `sslight retrain`, with their
// kinds: what the CronJob may pass while retrain's source is not there to
// read them from.
var retrainFlags = map[string]string{"source": "string", "state": "string", "once": "bool", "config": "string", "out": "string", "every": "duration"}

func loadCronJob(t *testing.T) (*serviceAccount, *cronJob) {
	t.Helper()
	var sa *serviceAccount
	var cj *cronJob
	yamlDocs(t, "infra/k8s/retrain-cronjob.yaml", func(kind string) any {
		switch kind {
		case "ServiceAccount":
			if sa == nil {
				sa = &serviceAccount{}
				return sa
			}
		case "CronJob":
			if cj == nil {
				cj = &cronJob{}
				return cj
			}
		}
		return nil
	})
	if sa == nil || cj == nil {
		t.Fatal("retrain-cronjob.yaml must hold one ServiceAccount and one CronJob")
	}
	return sa, cj
}

// TestRetrainCronJob: the manifest parses strictly and describes a safe,
// 2-core, workload-identity run of `sslight retrain --once`.
func TestRetrainCronJob(t *testing.T) {
	sa, cj := loadCronJob(t)
	if sa.APIVersion != "v1" || cj.APIVersion != "batch/v1" {
		t.Errorf("apiVersions %q, %q; want v1 and batch/v1", sa.APIVersion, cj.APIVersion)
	}
	if gsa := sa.Metadata.Annotations["iam.gke.io/gcp-service-account"]; !strings.HasSuffix(gsa, ".iam.gserviceaccount.com") {
		t.Errorf("ServiceAccount lacks the workload-identity annotation (iam.gke.io/gcp-service-account), got %q", gsa)
	}
	s := cj.Spec
	if err := checkCron(s.Schedule); err != nil {
		t.Error(err)
	}
	if s.ConcurrencyPolicy != "Forbid" {
		t.Errorf("concurrencyPolicy %q: two retrains on one state would race, want Forbid", s.ConcurrencyPolicy)
	}
	pod := s.JobTemplate.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Metadata.Name || sa.Metadata.Namespace != cj.Metadata.Namespace {
		t.Errorf("pod runs as service account %q in %q, the file defines %q in %q",
			pod.ServiceAccountName, cj.Metadata.Namespace, sa.Metadata.Name, sa.Metadata.Namespace)
	}
	if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
		t.Errorf("restartPolicy %q: a Job's pods need Never or OnFailure", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// Resources: a 2-core job, Guaranteed QoS (requests = limits).
	for _, res := range []string{"cpu", "memory"} {
		req, err1 := parseQuantity(c.Resources.Requests[res])
		lim, err2 := parseQuantity(c.Resources.Limits[res])
		if err1 != nil || err2 != nil {
			t.Errorf("%s request/limit: %v / %v", res, err1, err2)
			continue
		}
		if req != lim {
			t.Errorf("%s request %v != limit %v: want Guaranteed QoS", res, req, lim)
		}
		if res == "cpu" && req != 2 {
			t.Errorf("cpu request %v cores, want 2", req)
		}
		if res == "memory" && req < 1<<30 {
			t.Errorf("memory request %v bytes: under 1 GiB", req)
		}
	}

	// The image's binary, run as the image's user (infra/Dockerfile).
	d := loadDockerfile(t)
	trainer := mustStage(t, d, "trainer")
	if len(c.Command) != 1 || c.Command[0] != copyDestFrom(t, trainer, "build", "/out/sslight") {
		t.Errorf("command %q, want the trainer image's binary", c.Command)
	}
	uid := trainerUID(t, trainer)
	sc := pod.SecurityContext
	if sc.RunAsUser == nil || uid == "" || strings.TrimSpace(uid) != strconv.FormatInt(*sc.RunAsUser, 10) {
		got := "unset"
		if sc.RunAsUser != nil {
			got = strconv.FormatInt(*sc.RunAsUser, 10)
		}
		t.Errorf("runAsUser %s, want the trainer image's uid %s (Beam panics for a uid without a passwd entry)", got, uid)
	}
	// A read-only root needs a writable TMPDIR.
	if ro := c.SecurityContext.ReadOnlyRootFilesystem; ro != nil && *ro {
		tmp := ""
		for _, e := range c.Env {
			if e.Name == "TMPDIR" {
				tmp = e.Value
			}
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			if tmp != "" && (tmp == m.MountPath || strings.HasPrefix(tmp, m.MountPath+"/")) && !m.ReadOnly {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("read-only root filesystem but TMPDIR=%q is on no writable volume", tmp)
		}
	}

	// The command line: `retrain` with the flags, --once.
	if len(c.Args) == 0 || c.Args[0] != "retrain" {
		t.Fatalf("args %q: want the retrain sub-command first", c.Args)
	}
	for _, a := range c.Args[1:] {
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if _, ok := retrainFlags[n]; strings.HasPrefix(a, "-") && !ok {
			t.Fatalf("--%s is no flag of sslight retrain (issue #7 lists %v)", n, sortedKeys(retrainFlags))
		}
	}
	names, vals, err := flagArgs(c.Args[1:], func(n string) bool { return retrainFlags[n] == "bool" })
	if err != nil {
		t.Fatalf("args %q: %v", c.Args, err)
	}
	for _, n := range []string{"source", "state", "once"} {
		if _, ok := vals[n]; !ok {
			t.Errorf("the CronJob does not pass --%s", n)
		}
	}
	for _, n := range []string{"source", "state"} {
		if !strings.HasPrefix(vals[n], "gs://") {
			t.Errorf("--%s=%q: want a gs:// URI (the pod has no other storage that outlives it)", n, vals[n])
		}
	}
	if _, every := vals["every"]; every {
		t.Error("--every in a CronJob: the schedule is Kubernetes' job, pass --once")
	}

	t.Run("against cmd/sslight", func(t *testing.T) {
		cmds := sslightCommands(t)
		rt := cmds["retrain"]
		if rt == nil {
			t.Skipf("cmd/sslight registers no retrain command yet (it is being built); the CronJob's flags were checked against issue #7's list only (commands now: %v)", sortedKeys(cmds))
		}
		for _, n := range names {
			f, ok := rt.Flags[n]
			if !ok {
				t.Errorf("the CronJob passes --%s, which sslight retrain does not register (flags: %v)", n, flagNames(rt.Flags))
				continue
			}
			// The args were split assuming the kinds.
			if (f.Kind == "bool") != (retrainFlags[n] == "bool") {
				t.Errorf("--%s is a %s flag in %s, the CronJob passes it as a %s flag", n, f.Kind, f.Pos, retrainFlags[n])
			}
		}
	})
}

// composeFile is the subset of the Compose specification that
// infra/flink/docker-compose.yaml uses.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	NetworkMode string            `yaml:"network_mode"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   []string          `yaml:"depends_on"`
	Profiles    []string          `yaml:"profiles"`
	Ports       []string          `yaml:"ports"`
}

// composeDefault returns the default of a ${VAR:-default} reference, or s.
func composeDefault(s string) string {
	if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
		if _, def, ok := strings.Cut(s[2:len(s)-1], ":-"); ok {
			return def
		}
	}
	return s
}

// TestFlinkCompose: the Flink/job-server compose file parses strictly and
// its versions, ports and shared artifact folder agree with each other,
// with go.mod and with the endpoint the README tells sslight to use.
func TestFlinkCompose(t *testing.T) {
	var cf composeFile
	yamlDocs(t, "infra/flink/docker-compose.yaml", func(string) any { return &cf })
	for _, n := range []string{"jobmanager", "taskmanager", "job-server", "worker-pool"} {
		if _, ok := cf.Services[n]; !ok {
			t.Fatalf("no %s service", n)
		}
	}
	for n, s := range cf.Services {
		for _, d := range s.DependsOn {
			if _, ok := cf.Services[d]; !ok {
				t.Errorf("%s depends on unknown service %s", n, d)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, ok := cf.Volumes[src]; !ok && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
				t.Errorf("%s mounts undeclared volume %s", n, src)
			}
		}
	}
	js := cf.Services["job-server"]
	opts := map[string]string{}
	for _, a := range js.Command {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		opts[k] = v
	}

	beamVersion, _ := goModVersions(t)
	jsImage := composeDefault(js.Image)
	repo, tag, _ := strings.Cut(jsImage, ":")
	if tag != beamVersion {
		t.Errorf("job server %s: its Beam version must be go.mod's %s", jsImage, beamVersion)
	}
	flinkOfJS := strings.TrimSuffix(strings.TrimPrefix(path.Base(repo), "beam_flink"), "_job_server")
	flinkImage := composeDefault(cf.Services["jobmanager"].Image)
	if _, ver, _ := strings.Cut(flinkImage, ":"); ver != flinkOfJS && !strings.HasPrefix(ver, flinkOfJS+".") && !strings.HasPrefix(ver, flinkOfJS+"-") {
		t.Errorf("Flink image %s does not match the job server's Flink %s", flinkImage, flinkOfJS)
	}
	if composeDefault(cf.Services["taskmanager"].Image) != flinkImage {
		t.Error("the job and task managers run different Flink images")
	}
	rest := "8081"
	for _, l := range strings.Split(cf.Services["jobmanager"].Environment["FLINK_PROPERTIES"], "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "rest.port:"); ok {
			rest = strings.TrimSpace(v)
		}
	}
	if opts["flink-master"] != "localhost:"+rest {
		t.Errorf("job server --flink-master=%s, the job manager's REST port is %s", opts["flink-master"], rest)
	}
	// The job server stages artifacts that the task manager serves.
	dir := opts["artifacts-dir"]
	for _, n := range []string{"job-server", "taskmanager"} {
		ok := false
		for _, v := range cf.Services[n].Volumes {
			if _, target, _ := strings.Cut(v, ":"); target == dir {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s does not mount the artifact folder %q", n, dir)
		}
	}
	if composeDefault(cf.Services["worker-pool"].Image) == "" || !contains(cf.Services["worker-pool"].Command, "--worker_pool") {
		t.Error("worker-pool must run the SDK image's boot with --worker_pool")
	}

	// The README's sslight commands use this job server.
	endpoint := "--endpoint=localhost:" + opts["job-port"]
	readme := string(readRepoFile(t, "infra/flink/README.md"))
	if opts["job-port"] == "" || !strings.Contains(readme, endpoint) {
		t.Errorf("infra/flink/README.md does not use the job server's endpoint %s", endpoint)
	}
}

// TestDocumentedCommands: every sslight command line in the infra docs
// names a sub-command that exists and only flags it or Beam accepts.
func TestDocumentedCommands(t *testing.T) {
	cmds := sslightCommands(t)
	beam := beamFlags(t)
	var all []invocation
	for _, doc := range []string{"infra/README.md", "infra/flink/README.md"} {
		all = append(all, docInvocations(t, doc)...)
	}
	if len(all) < 3 {
		t.Fatalf("found %d sslight command lines in the infra docs; the reader is broken", len(all))
	}
	for _, inv := range all {
		c := cmds[inv.Sub]
		if c == nil {
			if inv.Sub == "retrain" {
				continue // being built; TestRetrainCronJob checks its flags
			}
			t.Errorf("%s: sslight %s: no such sub-command (have %v)", inv.Where, inv.Sub, sortedKeys(cmds))
			continue
		}
		isBool := func(n string) bool {
			if f, ok := c.Flags[n]; ok {
				return f.Kind == "bool"
			}
			return beam[n].Kind == "bool"
		}
		names, _, err := flagArgs(inv.Args, isBool)
		if err != nil {
			t.Errorf("%s: sslight %s %q: %v", inv.Where, inv.Sub, inv.Args, err)
			continue
		}
		for _, n := range names {
			if _, own := c.Flags[n]; !own {
				if _, b := beam[n]; !b {
					t.Errorf("%s: sslight %s --%s: neither a flag of %s nor a Beam option", inv.Where, inv.Sub, n, inv.Sub)
				}
			}
		}
	}
}
