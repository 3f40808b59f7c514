//go:build ignore

// gen_table writes zz_kernels.h, the emulation's kernel table, from the
// kernel sources' signatures.
package main

import (
	"log"
	"os"

	"github.com/sslight-go/sslight/trainer/gpu/kernels"
)

func main() {
	if err := os.WriteFile("zz_kernels.h", []byte(kernels.EmuTable()), 0o644); err != nil {
		log.Fatal(err)
	}
}
