package evaluate

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/cuda"
)

func TestPlaceModels(t *testing.T) {
	for _, name := range []string{"", "cpu"} {
		if got, err := PlaceModels(name, nil); got != DeviceCPU || err != nil {
			t.Errorf("PlaceModels(%q) = %q, %v", name, got, err)
		}
	}
	if _, err := PlaceModels("tpu", nil); err == nil || !strings.Contains(err.Error(), "want cpu, cuda or auto") {
		t.Errorf("tpu: %v", err)
	}
	if _, err := cuda.FindLibraries(os.Getenv, cuda.Dlopen); err == nil {
		t.Skip("CUDA libraries installed here: the fallback of auto is not seen")
	}
	var said []string
	got, err := PlaceModels("auto", func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) })
	if got != DeviceCPU || err != nil || len(said) != 1 || !strings.Contains(said[0], "the models run on the CPU") {
		t.Errorf("auto without a GPU: %q, %v, said %q", got, err, said)
	}
	if _, err := PlaceModels("cuda", nil); err == nil || !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Errorf("cuda without a GPU: %v", err)
	}
}
