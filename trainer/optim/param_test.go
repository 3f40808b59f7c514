package optim

import (
	"errors"
	"strings"
	"testing"
)

func TestGroupParams(t *testing.T) {
	shapes := func(spec ...any) []*Param {
		var ps []*Param
		for i := 0; i < len(spec); i += 2 {
			shape := spec[i+1].([]int)
			ps = append(ps, &Param{Name: spec[i].(string), Shape: shape, Data: make([]float32, (&Param{Shape: shape}).Size())})
		}
		return ps
	}
	cfg := GroupConfig{WDFactorForBias: 0.5, WDFactorForDW: 0.25, LARSExcludeBias: true, LARSExcludeDW: false}
	tests := []struct {
		name   string
		params []*Param
		want   []string // names per group, "|" between groups
	}{
		{
			"resnet: conv, bn, fc",
			shapes("conv1.weight", []int{64, 3, 7, 7}, "bn1.weight", []int{64}, "bn1.bias", []int{64},
				"fc.weight", []int{10, 512}, "fc.bias", []int{10}),
			[]string{"conv1.weight,fc.weight", "bn1.weight,bn1.bias,fc.bias"},
		},
		{
			"mobilenet: depthwise gets its own group between the others",
			shapes("features.0.0.weight", []int{32, 3, 3, 3}, "features.1.conv.0.0.weight", []int{32, 1, 3, 3},
				"features.1.conv.0.1.weight", []int{32}, "features.1.conv.1.weight", []int{16, 32, 1, 1}),
			[]string{"features.0.0.weight,features.1.conv.1.weight", "features.1.conv.0.0.weight", "features.1.conv.0.1.weight"},
		},
		{
			"vit: cls_token [1,1,D] and pos_embed are group 0",
			shapes("cls_token", []int{1, 1, 192}, "pos_embed", []int{1, 197, 192}, "patch_embed.proj.weight", []int{192, 3, 16, 16},
				"patch_embed.proj.bias", []int{192}, "blocks.0.norm1.weight", []int{192}),
			[]string{"cls_token,pos_embed,patch_embed.proj.weight", "patch_embed.proj.bias,blocks.0.norm1.weight"},
		},
		{
			"single-input-channel conv counts as depthwise (shape rule)",
			shapes("conv1.weight", []int{32, 1, 3, 3}, "head.weight", []int{4096, 1}),
			[]string{"head.weight", "conv1.weight", ""},
		},
		{
			"scalar (0-dim) and 3-dim tensors are group 0",
			shapes("scale", []int{}, "w3", []int{2, 1, 3}),
			[]string{"scale,w3", ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			groups := GroupParams(tc.params, cfg)
			if len(groups) != len(tc.want) {
				t.Fatalf("%d groups, want %d", len(groups), len(tc.want))
			}
			for gi, g := range groups {
				var names []string
				for _, p := range g.Params {
					names = append(names, p.Name)
				}
				if got := strings.Join(names, ","); got != tc.want[gi] {
					t.Errorf("group %d = %q, want %q", gi, got, tc.want[gi])
				}
			}
			if groups[0].WDFactor != 1 || groups[0].LARSExclude {
				t.Errorf("group 0 = {%v %v}, want {1 false}", groups[0].WDFactor, groups[0].LARSExclude)
			}
			last := groups[len(groups)-1]
			if last.WDFactor != 0.5 || !last.LARSExclude {
				t.Errorf("bias group = {%v %v}, want {0.5 true}", last.WDFactor, last.LARSExclude)
			}
			if len(groups) == 3 && (groups[1].WDFactor != 0.25 || groups[1].LARSExclude) {
				t.Errorf("depthwise group = {%v %v}, want {0.25 false}", groups[1].WDFactor, groups[1].LARSExclude)
			}
		})
	}
}

func TestOptimizerRejectsBadParams(t *testing.T) {
	ok := func() *Param { return param("w", []float32{1, 2, 3, 4}, 2, 2) }
	tests := []struct {
		name   string
		groups []Group
		want   error
	}{
		{"nil parameter", []Group{{Params: []*Param{nil}}}, ErrInvalidParams},
		{"unnamed", []Group{{Params: []*Param{{Shape: []int{1}, Data: []float32{1}}}}}, ErrInvalidParams},
		{"duplicate name across groups", []Group{{Params: []*Param{ok()}}, {Params: []*Param{ok()}}}, ErrInvalidParams},
		{"data shorter than shape", []Group{{Params: []*Param{param("w", []float32{1, 2, 3}, 2, 2)}}}, ErrShape},
		{"negative dimension", []Group{{Params: []*Param{{Name: "w", Shape: []int{-1, -2}, Data: []float32{1, 2}}}}}, ErrShape},
	}
	for _, tc := range tests {
		for _, method := range []string{MethodLARS, MethodSGD, MethodAdamW} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				if _, err := New(method, tc.groups, 0.9); !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
			})
		}
	}
}
