package trainer

import (
	"bytes"
	"testing"

	"github.com/sslight-go/sslight/sinks/safetensors"
)

// FuzzLoadLossState feeds arbitrary checkpoint contents to the SwAV and
// MoCo loss-state readers (the queues, their flag and pointer): they must
// return an error or load a state that saves back to the same tensors,
// never panic. Seeds are each method's valid state and a few broken ones.
func FuzzLoadLossState(f *testing.F) {
	swav, err := newMethod(tinySwAVConfig(f), geometryOf(tinySwAVConfig(f)), 8, &schedules{})
	if err != nil {
		f.Fatal(err)
	}
	defer swav.close()
	moco, err := newMethod(tinyMoCoConfig(f), geometryOf(tinyMoCoConfig(f)), 8, &schedules{})
	if err != nil {
		f.Fatal(err)
	}
	defer moco.close()
	models := []method{swav, moco}
	encode := func(file *safetensors.File) []byte {
		var b bytes.Buffer
		if err := safetensors.Encode(&b, file); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	for _, m := range models {
		file := safetensors.NewFile()
		if err := m.saveLossState(file); err != nil {
			f.Fatal(err)
		}
		f.Add(encode(file))
	}
	if err := swav.(*swavModel).startEpoch(1); err != nil { // with a queue
		f.Fatal(err)
	}
	file := safetensors.NewFile()
	if err := swav.saveLossState(file); err != nil {
		f.Fatal(err)
	}
	f.Add(encode(file))
	for _, bad := range []map[string]safetensors.Tensor{
		{nameSwAVUseQueue: {DType: safetensors.F32, Shape: []int{}, F32: []float32{1}}},
		{nameSwAVUseQueue: scalarI64(1), nameSwAVQueue: {DType: safetensors.F32, Shape: []int{2, 0, 16}, F32: []float32{}}},
		{nameSwAVUseQueue: scalarI64(0), nameSwAVQueue: {DType: safetensors.F32, Shape: []int{1, 2, 2}, F32: make([]float32, 4)}},
		{nameMoCoQueue: {DType: safetensors.F32, Shape: []int{16, 8}, F32: make([]float32, 128)}, nameMoCoQueuePtr: {DType: safetensors.I64, Shape: []int{1}, I64: []int64{-8}}},
		{nameMoCoQueue: {DType: safetensors.F32, Shape: []int{16, 32}, F32: make([]float32, 512)}, nameMoCoQueuePtr: {DType: safetensors.I64, Shape: []int{1}, I64: []int64{40}}},
	} {
		file := safetensors.NewFile()
		for _, name := range []string{nameSwAVUseQueue, nameSwAVQueue, nameMoCoQueue, nameMoCoQueuePtr} {
			if t, ok := bad[name]; ok {
				if err := file.Add(name, t); err != nil {
					f.Fatal(err)
				}
			}
		}
		f.Add(encode(file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := safetensors.Decode(data)
		if err != nil {
			return
		}
		for _, m := range models {
			if err := m.loadLossState(in); err != nil {
				continue
			}
			out := safetensors.NewFile()
			if err := m.saveLossState(out); err != nil {
				t.Fatalf("saving a loaded state: %v", err)
			}
			for _, name := range out.Names {
				a, b := in.Tensors[name], out.Tensors[name]
				if name == nameSwAVUseQueue {
					if (a.I64[0] != 0) != (b.I64[0] != 0) {
						t.Fatalf("%s: loaded %d, saved %d", name, a.I64[0], b.I64[0])
					}
					continue
				}
				if !bytes.Equal(float32Bytes(a.F32), float32Bytes(b.F32)) || !equalInts(a.I64, b.I64) {
					t.Fatalf("%s: loaded %v%v, saved %v%v", name, a.DType, a.Shape, b.DType, b.Shape)
				}
			}
		}
	})
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
