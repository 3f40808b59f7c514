package configs

// MeanStd returns DATA.MEAN and DATA.STD as three channels each. A valid
// config has exactly three of each; a shorter list (a config not yet
// validated, or one channel given for all) repeats its last value, and an
// empty one gives zeros, as the trainer's normaliser has always read them.
func (d DataConfig) MeanStd() (mean, std [3]float64) {
	return channels(d.Mean), channels(d.Std)
}

// MeanStd32 is MeanStd in float32, the precision the views are normalised
// in.
func (d DataConfig) MeanStd32() (mean, std [3]float32) {
	m, s := d.MeanStd()
	for i := range 3 {
		mean[i], std[i] = float32(m[i]), float32(s[i])
	}
	return mean, std
}

func channels(v []float64) [3]float64 {
	var out [3]float64
	for i := range out {
		switch {
		case i < len(v):
			out[i] = v[i]
		case len(v) > 0:
			out[i] = v[len(v)-1]
		}
	}
	return out
}
