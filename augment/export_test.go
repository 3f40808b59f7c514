package augment

// ProcessCPU exposes processCPU to the external benchmark package.
var ProcessCPU = processCPU
