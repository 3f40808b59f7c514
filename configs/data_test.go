package configs

import "testing"

func TestDataMeanStd(t *testing.T) {
	for _, tc := range []struct {
		mean, std []float64
		wantMean  [3]float64
		wantStd   [3]float64
	}{
		{[]float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}, [3]float64{0.485, 0.456, 0.406}, [3]float64{0.229, 0.224, 0.225}},
		{[]float64{0.2860}, []float64{0.3530}, [3]float64{0.2860, 0.2860, 0.2860}, [3]float64{0.3530, 0.3530, 0.3530}},
		{[]float64{0.1, 0.2}, []float64{1, 2, 3, 4}, [3]float64{0.1, 0.2, 0.2}, [3]float64{1, 2, 3}},
		{nil, nil, [3]float64{}, [3]float64{}},
	} {
		d := DataConfig{Mean: tc.mean, Std: tc.std}
		m, s := d.MeanStd()
		if m != tc.wantMean || s != tc.wantStd {
			t.Errorf("MeanStd of %v / %v = %v / %v, want %v / %v", tc.mean, tc.std, m, s, tc.wantMean, tc.wantStd)
		}
		m32, s32 := d.MeanStd32()
		for i := range 3 {
			if m32[i] != float32(tc.wantMean[i]) || s32[i] != float32(tc.wantStd[i]) {
				t.Errorf("MeanStd32 of %v / %v = %v / %v", tc.mean, tc.std, m32, s32)
				break
			}
		}
	}
}
