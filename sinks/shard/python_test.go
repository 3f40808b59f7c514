package shard

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readShardPy reads a shard the way a PyTorch user would, with tarfile and
// numpy.load, grouping members into samples the way webdataset does (key =
// basename up to the first dot), and checks every member against the
// contract and every pixel against the formula of pixel() recomputed in
// numpy. If webdataset is installed it also iterates the shard with it.
const readShardPy = `
import io, json, re, sys, tarfile
import numpy as np

path, n = sys.argv[1], int(sys.argv[2])
G, GH, GW, L, LH, LW = (int(x) for x in sys.argv[3].split(","))

samples, order = {}, []
with tarfile.open(path) as tf:
    for m in tf:
        assert m.isfile(), m.name
        assert (m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime) == (0o644, 0, 0, "", "", 0), (m.name, m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime)
        # webdataset's base_plus_ext
        key, ext = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", m.name).groups()
        samples.setdefault(key, {})[ext] = tf.extractfile(m).read()
        order.append(m.name)
assert len(samples) == n, (len(samples), n)

def expected(i, which, shape):
    size = int(np.prod(shape))
    return ((i * 31 + which * 17 + np.arange(size, dtype=np.int64) * 7) % 251).astype(np.uint8).reshape(shape)

for i in range(n):
    key = "n01440764_%05d" % i
    assert order[3*i:3*i+3] == [key + ".json", key + ".global.npy", key + ".local.npy"], order[3*i:3*i+3]
    s = samples[key]
    meta = json.loads(s["json"])
    assert meta == {"uri": "gs://bucket/train/n01440764/%05d.JPEG" % i, "label": i % 10}, meta
    g = np.load(io.BytesIO(s["global.npy"]))
    l = np.load(io.BytesIO(s["local.npy"]))
    assert g.dtype == np.uint8 and g.shape == (G, GH, GW, 3), (g.dtype, g.shape)
    assert l.dtype == np.uint8 and l.shape == (L, LH, LW, 3), (l.dtype, l.shape)
    assert np.array_equal(g, expected(i, 0, g.shape)), "global pixels of %s" % key
    assert np.array_equal(l, expected(i, 1, l.shape)), "local pixels of %s" % key
    # One pixel by explicit index: view 1, row 2, column 3, green.
    assert int(g[1, 2, 3, 1]) == (i * 31 + (((1 * GH + 2) * GW + 3) * 3 + 1) * 7) % 251

try:
    import webdataset as wds
except ImportError:
    print("webdataset: not installed")
else:
    got = [(s["__key__"], np.load(io.BytesIO(s["global.npy"])).shape) for s in wds.WebDataset("file:" + path, shardshuffle=False)]
    assert [k for k, _ in got] == ["n01440764_%05d" % i for i in range(n)], got
    print("webdataset: ok")
print("ok", n)
`

func TestPythonReadsShard(t *testing.T) {
	py := python3(t)
	for _, tc := range []struct {
		name string
		n    int
		d    dims
	}{
		{"small", 5, small},
		{"realistic", 2, realistic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := writeShard(t, t.TempDir(), 0, 0, tc.n, tc.d)
			if filepath.Base(info.URI) != info.Name {
				t.Fatalf("URI %s does not end in %s", info.URI, info.Name)
			}
			arg := fmt.Sprintf("%d,%d,%d,%d,%d,%d", tc.d.g, tc.d.gh, tc.d.gw, tc.d.l, tc.d.lh, tc.d.lw)
			out, err := exec.CommandContext(context.Background(), py, "-c", readShardPy, info.URI, fmt.Sprint(tc.n), arg).CombinedOutput()
			if err != nil {
				t.Fatalf("python rejected the shard: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), fmt.Sprintf("ok %d", tc.n)) {
				t.Fatalf("python output: %s", out)
			}
			t.Logf("python: %s", strings.TrimSpace(string(out)))
		})
	}
}
