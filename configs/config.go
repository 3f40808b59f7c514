package configs

import "reflect"

// Config is the whole SSLight configuration. Field tags carry the
// reference's exact key spellings (including its DINOHead.NORM_LAST_YEAR),
// which are the names used in YAML files, flag overrides, error messages and
// the canonical JSON. Defaults are those of the reference's
// src/config/defaults.py; see [Default].
type Config struct {
	Train                TrainConfig          `yaml:"TRAIN" json:"TRAIN"`
	Val                  ValConfig            `yaml:"VAL" json:"VAL"`
	Data                 DataConfig           `yaml:"DATA" json:"DATA"`
	TwoViewsTransforms   TwoViewsTransforms   `yaml:"TWO_VIEWS_TRANSFORMS" json:"TWO_VIEWS_TRANSFORMS"`
	MultiViewsTransforms MultiViewsTransforms `yaml:"MULTI_VIEWS_TRANSFORMS" json:"MULTI_VIEWS_TRANSFORMS"`
	Model                ModelConfig          `yaml:"MODEL" json:"MODEL"`
	SwAV                 SwAVConfig           `yaml:"SWAV" json:"SWAV"`
	MoCo                 MoCoConfig           `yaml:"MOCO" json:"MOCO"`
	DINO                 DINOConfig           `yaml:"DINO" json:"DINO"`
	DINOHead             DINOHeadConfig       `yaml:"DINOHead" json:"DINOHead"`
	ViT                  ViTConfig            `yaml:"VIT" json:"VIT"`
	Solver               SolverConfig         `yaml:"SOLVER" json:"SOLVER"`

	// LogStep is the number of iterations between two log lines.
	LogStep int `yaml:"LOG_STEP" json:"LOG_STEP"`
	// LogGrad logs gradient norms with the training metrics.
	LogGrad bool `yaml:"LOG_GRAD" json:"LOG_GRAD"`
	// Stage is one of TRAIN, VAL, TEST, FT (compared case-insensitively,
	// as the reference does).
	Stage string `yaml:"STAGE" json:"STAGE"`
	// Distributed runs one process per accelerator (reference only; the Go
	// trainer is single-process and ignores it).
	Distributed bool `yaml:"DISTRIBUTED" json:"DISTRIBUTED"`
	// Seed is the global seed: every random draw (crops, initialisation) is
	// a function of it. Kept in [0, 2^32) like numpy's seed.
	Seed int `yaml:"SEED" json:"SEED"`
	// DistBackend is the torch.distributed backend (reference only).
	DistBackend string `yaml:"DIST_BACKEND" json:"DIST_BACKEND"`
	// NNodes is the number of machines (reference only).
	NNodes int `yaml:"N_NODES" json:"N_NODES"`
	// WorldSize is the total number of processes; the reference scales the
	// learning rate with TRAIN.BATCH_SIZE × WORLD_SIZE / 256.
	WorldSize int `yaml:"WORLD_SIZE" json:"WORLD_SIZE"`
	// NodeRank is this machine's index among N_NODES (reference only).
	NodeRank int `yaml:"NODE_RANK" json:"NODE_RANK"`
	// DistURL is the torch.distributed rendezvous URL (reference only).
	DistURL string `yaml:"DIST_URL" json:"DIST_URL"`
	// Workers is the number of data-loading workers per process.
	Workers int `yaml:"WORKERS" json:"WORKERS"`
	// UseFP16 enables mixed precision in the reference.
	UseFP16 bool `yaml:"USE_FP16" json:"USE_FP16"`
	// SSLMethod is DINO, SWAV or MOCO, spelled exactly so: the reference
	// looks up the class "<SSL_METHOD>Trainer", which is case-sensitive.
	SSLMethod string `yaml:"SSL_METHOD" json:"SSL_METHOD"`
	// NumGPUsPerNode is the number of processes per machine.
	NumGPUsPerNode int `yaml:"NUM_GPUS_PER_NODE" json:"NUM_GPUS_PER_NODE"`
	// TensorboardPath is where the reference writes TensorBoard logs.
	TensorboardPath string `yaml:"TENSORBOARD_PATH" json:"TENSORBOARD_PATH"`
	// OutputDir is the base directory for checkpoints, logs and metrics.
	OutputDir string `yaml:"OUTPUT_DIR" json:"OUTPUT_DIR"`
}

// TrainConfig is the TRAIN section: the pre-training data set and loop.
type TrainConfig struct {
	// Dataset names the training data set (for reports).
	Dataset string `yaml:"DATASET" json:"DATASET"`
	// NumClasses is the number of labels, used by the kNN monitor and the
	// joint linear probe.
	NumClasses int `yaml:"NUM_CLASSES" json:"NUM_CLASSES"`
	// FileName is the training file under DATA.PATH_TO_DATA_DIR.
	FileName string `yaml:"FILE_NAME" json:"FILE_NAME"`
	// SubsetFilePath lists the images of an ablation subset ("" for all).
	SubsetFilePath string `yaml:"SUBSET_FILE_PATH" json:"SUBSET_FILE_PATH"`
	// BatchSize is the batch size per process (per GPU in the reference).
	BatchSize int `yaml:"BATCH_SIZE" json:"BATCH_SIZE"`
	// CheckpointPeriod is the number of epochs between two checkpoints.
	CheckpointPeriod int `yaml:"CHECKPOINT_PERIOD" json:"CHECKPOINT_PERIOD"`
	// CheckpointFilePath is a checkpoint to start from ("" for none).
	CheckpointFilePath string `yaml:"CHECKPOINT_FILE_PATH" json:"CHECKPOINT_FILE_PATH"`
	// JointLinearProbe trains a linear probe on the fly next to the SSL loss.
	JointLinearProbe bool `yaml:"JOINT_LINEAR_PROBE" json:"JOINT_LINEAR_PROBE"`
	// Device is where pretrain and eval run: cpu, cuda or auto (sslight
	// extension; the --device flags override it). It says where the
	// arithmetic runs, not what is trained, so it is left out of the
	// config hash: shards and checkpoints are the same for both devices.
	Device string `yaml:"DEVICE" json:"DEVICE" canonical:"-"`
}

// ValConfig is the VAL section: the data used for the kNN monitor.
type ValConfig struct {
	// Dataset names the validation data set.
	Dataset string `yaml:"DATASET" json:"DATASET"`
	// FileName is the validation file under DATA.PATH_TO_DATA_DIR.
	FileName string `yaml:"FILE_NAME" json:"FILE_NAME"`
	// SubsetFilePath lists a validation subset ("" for all).
	SubsetFilePath string `yaml:"SUBSET_FILE_PATH" json:"SUBSET_FILE_PATH"`
	// BatchSize is the evaluation batch size per process.
	BatchSize int `yaml:"BATCH_SIZE" json:"BATCH_SIZE"`
}

// Data formats accepted in DATA.FORMAT (an sslight extension).
const (
	FormatImageNet = "imagenet" // <root>/<class>/<image>, the ImageNet folder layout
	FormatCOCO     = "coco"     // COCO annotations json + image folder
	FormatIDX      = "idx"      // MNIST-style IDX files (Fashion-MNIST)
	FormatFolder   = "folder"   // a flat folder of images, no labels
)

// DataConfig is the DATA section.
type DataConfig struct {
	// PathToDataDir is the data root: a local folder or a gs:// prefix.
	PathToDataDir string `yaml:"PATH_TO_DATA_DIR" json:"PATH_TO_DATA_DIR"`
	// Mean is the per-channel (RGB) normalisation mean, applied by the
	// trainer to the uint8 crops.
	Mean []float64 `yaml:"MEAN" json:"MEAN"`
	// Std is the per-channel (RGB) normalisation standard deviation.
	Std []float64 `yaml:"STD" json:"STD"`
	// PixelLimit is an sslight extension: images whose header declares more
	// pixels than this are rejected before decoding (dead-lettered), as a
	// guard against decompression bombs. The default 178956970 is where
	// Pillow raises DecompressionBombError (2 × Image.MAX_IMAGE_PIXELS), so
	// the reference refuses the same images.
	PixelLimit int64 `yaml:"PIXEL_LIMIT" json:"PIXEL_LIMIT"`
	// ShardSizeMB is an sslight extension: the target size of one prepared
	// shard in MiB.
	ShardSizeMB int `yaml:"SHARD_SIZE_MB" json:"SHARD_SIZE_MB"`
	// Format is an sslight extension: the source layout, one of imagenet,
	// coco, idx, folder (see the Format constants).
	Format string `yaml:"FORMAT" json:"FORMAT"`
}

// TwoViewsTransforms is the TWO_VIEWS_TRANSFORMS section, the reference's
// two-view augmentation (for BYOL-style methods). sslight parses and
// validates it so reference YAMLs load, but no sslight method uses it.
type TwoViewsTransforms struct {
	GlobalCropsScale         []float64 `yaml:"GLOBAL_CROPS_SCALE" json:"GLOBAL_CROPS_SCALE"`                   // RandomResizedCrop area range
	GlobalCropSize           int       `yaml:"GLOBAL_CROP_SIZE" json:"GLOBAL_CROP_SIZE"`                       // output side in pixels
	RandomHorizontalFlipProb []float64 `yaml:"RANDOM_HORIZONTAL_FLIP_PROB" json:"RANDOM_HORIZONTAL_FLIP_PROB"` // per view
	GaussianBlurProb         []float64 `yaml:"GAUSSIAN_BLUR_PROB" json:"GAUSSIAN_BLUR_PROB"`                   // per view
	ColorJitterProb          []float64 `yaml:"COLOR_JITTER_PROB" json:"COLOR_JITTER_PROB"`                     // per view
	ColorJitterIntensity     []float64 `yaml:"COLOR_JITTER_INTENSITY" json:"COLOR_JITTER_INTENSITY"`           // brightness, contrast, saturation, hue
	GreyscaleProb            []float64 `yaml:"GREYSCALE_PROB" json:"GREYSCALE_PROB"`                           // per view
	CropProb                 []float64 `yaml:"CROP_PROB" json:"CROP_PROB"`                                     // per view (unused by the reference)
	SolarizationProb         []float64 `yaml:"SOLARIZATION_PROB" json:"SOLARIZATION_PROB"`                     // per view
}

// MultiViewsTransforms is the MULTI_VIEWS_TRANSFORMS section: the multi-crop
// augmentation used by DINO, SwAV and MoCo-v2 with local views, and the
// re-balanced loss weights. The paper's two changes live here: crop scales
// (and local crop size) and LAMBDAS.
//
// Every key except LAMBDAS and CROPS_FOR_ASSIGN (read by the losses only)
// is part of [Config.AugmentationHash].
type MultiViewsTransforms struct {
	// GlobalCropsScale is the RandomResizedCrop area range (min, max) of the
	// two global views, as fractions of the image area.
	GlobalCropsScale []float64 `yaml:"GLOBAL_CROPS_SCALE" json:"GLOBAL_CROPS_SCALE"`
	// LocalCropsScale is the area range of the local views.
	LocalCropsScale []float64 `yaml:"LOCAL_CROPS_SCALE" json:"LOCAL_CROPS_SCALE"`
	// LocalCropsNumber is the number of local views per image; it must equal
	// NMB_CROPS[1] (the reference keeps both).
	LocalCropsNumber int `yaml:"LOCAL_CROPS_NUMBER" json:"LOCAL_CROPS_NUMBER"`
	// RandomHorizontalFlipProb: only element 0 is used, for every view.
	RandomHorizontalFlipProb []float64 `yaml:"RANDOM_HORIZONTAL_FLIP_PROB" json:"RANDOM_HORIZONTAL_FLIP_PROB"`
	// GaussianBlurProb is (global view 1, global view 2, local views).
	GaussianBlurProb []float64 `yaml:"GAUSSIAN_BLUR_PROB" json:"GAUSSIAN_BLUR_PROB"`
	// ColorJitterProb: only element 0 is used, for every view.
	ColorJitterProb []float64 `yaml:"COLOR_JITTER_PROB" json:"COLOR_JITTER_PROB"`
	// ColorJitterIntensity is (brightness, contrast, saturation, hue).
	ColorJitterIntensity []float64 `yaml:"COLOR_JITTER_INTENSITY" json:"COLOR_JITTER_INTENSITY"`
	// GreyscaleProb: only element 0 is used, for every view.
	GreyscaleProb []float64 `yaml:"GREYSCALE_PROB" json:"GREYSCALE_PROB"`
	// CropProb is kept for compatibility; the reference never reads it.
	CropProb []float64 `yaml:"CROP_PROB" json:"CROP_PROB"`
	// LocalCropSize is the side of a local view in pixels.
	LocalCropSize int `yaml:"LOCAL_CROP_SIZE" json:"LOCAL_CROP_SIZE"`
	// GlobalCropSize is the side of a global view in pixels.
	GlobalCropSize int `yaml:"GLOBAL_CROP_SIZE" json:"GLOBAL_CROP_SIZE"`
	// SolarizationProb: element 1 applies to the second global view.
	SolarizationProb []float64 `yaml:"SOLARIZATION_PROB" json:"SOLARIZATION_PROB"`
	// CropsForAssign lists the views SwAV computes codes for.
	CropsForAssign []int `yaml:"CROPS_FOR_ASSIGN" json:"CROPS_FOR_ASSIGN"`
	// NmbCrops is (global views, local views); global is always 2.
	NmbCrops []int `yaml:"NMB_CROPS" json:"NMB_CROPS"`
	// Lambdas is (α, 1−α) of the re-balanced loss
	// L = α·L_g/P_gg + (1−α)·L_l/P_gl (paper Sec. 3.3.4).
	Lambdas []float64 `yaml:"LAMBDAS" json:"LAMBDAS"`
}

// Backbone architectures accepted in MODEL.BACKBONE_ARCH.
var backboneArchs = []string{"mobilenet_v2", "resnet18", "resnet34", "resnet50", "vit_tiny", "vit_small"}

// BackboneArchs returns the architectures sslight implements, in a stable
// order.
func BackboneArchs() []string { return append([]string(nil), backboneArchs...) }

// ModelConfig is the MODEL section.
type ModelConfig struct {
	// BackboneArch is one of [BackboneArchs].
	BackboneArch string `yaml:"BACKBONE_ARCH" json:"BACKBONE_ARCH"`
	// ModelMomentum is the teacher EMA momentum at the start of training; it
	// follows a cosine schedule up to ModelMomentumEnd.
	ModelMomentum float64 `yaml:"MODEL_MOMENTUM" json:"MODEL_MOMENTUM"`
	// ModelMomentumEnd is the teacher EMA momentum at the end of training.
	ModelMomentumEnd float64 `yaml:"MODEL_MOMENTUM_END" json:"MODEL_MOMENTUM_END"`
	// Width is an sslight extension: a channel-width multiplier for the CNN
	// backbones (0.25 turns ResNet18's 64/128/256/512 into 16/32/64/128).
	// The default 1.0 is the reference network. The reference's evaluation
	// code calls the same idea MODEL.BACKBONE_WIDTH_MULT.
	Width float64 `yaml:"WIDTH" json:"WIDTH"`
	// SmallImageStem is an sslight extension: replace the CNN stem with a
	// 3×3 stride-1 convolution and drop the max-pool, for 28–32 px inputs.
	// Default false (the reference stem).
	SmallImageStem bool `yaml:"SMALL_IMAGE_STEM" json:"SMALL_IMAGE_STEM"`
}

// SwAVConfig is the SWAV section.
type SwAVConfig struct {
	FreezePrototypesEpochs int     `yaml:"FREEZE_PROTOTYPES_EPOCHS" json:"FREEZE_PROTOTYPES_EPOCHS"` // prototypes frozen for these epochs
	EpochQueueStarts       int     `yaml:"EPOCH_QUEUE_STARTS" json:"EPOCH_QUEUE_STARTS"`             // first epoch that uses the queue
	Temperature            float64 `yaml:"TEMPERATURE" json:"TEMPERATURE"`                           // softmax temperature
	Epsilon                float64 `yaml:"EPSILON" json:"EPSILON"`                                   // Sinkhorn entropy regularisation
	SinkhornIterations     int     `yaml:"SINKHORN_ITERATIONS" json:"SINKHORN_ITERATIONS"`           // Sinkhorn-Knopp iterations
	NmbPrototypes          int     `yaml:"NMB_PROTOTYPES" json:"NMB_PROTOTYPES"`                     // number of prototypes
	QueueLength            int     `yaml:"QUEUE_LENGTH" json:"QUEUE_LENGTH"`                         // 0 disables the queue
	OutputDim              int     `yaml:"OUTPUT_DIM" json:"OUTPUT_DIM"`                             // projection output size
	HiddenSize             int     `yaml:"HIDDEN_SIZE" json:"HIDDEN_SIZE"`                           // projection hidden size
	NumLayers              int     `yaml:"NUM_LAYERS" json:"NUM_LAYERS"`                             // projection layers
	UseBNInHead            bool    `yaml:"USE_BN_IN_HEAD" json:"USE_BN_IN_HEAD"`                     // batch norm in the projection
}

// MoCoConfig is the MOCO section (MoCo-v2 with local views).
type MoCoConfig struct {
	Temperature float64 `yaml:"TEMPERATURE" json:"TEMPERATURE"`       // InfoNCE temperature
	GlobalOnly  bool    `yaml:"GLOBAL_ONLY" json:"GLOBAL_ONLY"`       // ignore the local views
	QueueLength int     `yaml:"QUEUE_LENGTH" json:"QUEUE_LENGTH"`     // negatives queue length
	Momentum    float64 `yaml:"MOMENTUM" json:"MOMENTUM"`             // key-encoder EMA momentum
	OutputDim   int     `yaml:"OUTPUT_DIM" json:"OUTPUT_DIM"`         // projection output size
	HiddenSize  int     `yaml:"HIDDEN_SIZE" json:"HIDDEN_SIZE"`       // projection hidden size
	NumLayers   int     `yaml:"NUM_LAYERS" json:"NUM_LAYERS"`         // projection layers
	UseBNInHead bool    `yaml:"USE_BN_IN_HEAD" json:"USE_BN_IN_HEAD"` // batch norm in the projection
}

// DINOConfig is the DINO section (the loss; the head is DINOHead).
type DINOConfig struct {
	// GlobalOnly uses only the global-global loss terms.
	GlobalOnly bool `yaml:"GLOBAL_ONLY" json:"GLOBAL_ONLY"`
	// StudentTemp is the student softmax temperature.
	StudentTemp float64 `yaml:"STUDENT_TEMP" json:"STUDENT_TEMP"`
	// WarmupTeacherTemp is the teacher temperature at the start of warm-up.
	WarmupTeacherTemp float64 `yaml:"WARMUP_TEACHER_TEMP" json:"WARMUP_TEACHER_TEMP"`
	// TeacherTemp is the teacher temperature after warm-up.
	TeacherTemp float64 `yaml:"TEACHER_TEMP" json:"TEACHER_TEMP"`
	// WarmupTeacherTempEpochs is the length of the linear teacher
	// temperature warm-up in epochs (the reference changes the temperature
	// once per epoch).
	WarmupTeacherTempEpochs int `yaml:"WARMUP_TEACHER_TEMP_EPOCHS" json:"WARMUP_TEACHER_TEMP_EPOCHS"`
	// WarmupTeacherTempIters is an sslight extension: the warm-up length in
	// iterations, with the temperature changed every iteration, for runs
	// too short for whole epochs. 0 (the default) means "use
	// WARMUP_TEACHER_TEMP_EPOCHS"; setting both non-zero is an error.
	// Needed because the reference's key is an int and its config loader
	// rejects a float there.
	WarmupTeacherTempIters int `yaml:"WARMUP_TEACHER_TEMP_ITERS" json:"WARMUP_TEACHER_TEMP_ITERS"`
	// CenterMomentum is the EMA momentum of the teacher-output center.
	CenterMomentum float64 `yaml:"CENTER_MOMENTUM" json:"CENTER_MOMENTUM"`
}

// DINOHeadConfig is the DINOHead section: the DINO projection head.
type DINOHeadConfig struct {
	OutputDim     int  `yaml:"OUTPUT_DIM" json:"OUTPUT_DIM"`         // prototypes (last layer size)
	HiddenSize    int  `yaml:"HIDDEN_SIZE" json:"HIDDEN_SIZE"`       // MLP hidden size
	BottleneckDim int  `yaml:"BOTTLENECK_DIM" json:"BOTTLENECK_DIM"` // MLP output before the last layer
	NumLayers     int  `yaml:"NUM_LAYERS" json:"NUM_LAYERS"`         // MLP layers
	UseBNInHead   bool `yaml:"USE_BN_IN_HEAD" json:"USE_BN_IN_HEAD"` // batch norm in the MLP
	// NormLastLayer weight-normalises the last layer. The key keeps the
	// reference's spelling NORM_LAST_YEAR so its YAMLs load unchanged.
	NormLastLayer bool `yaml:"NORM_LAST_YEAR" json:"NORM_LAST_YEAR"`
}

// ViTConfig is the VIT section.
type ViTConfig struct {
	PatchSize    int     `yaml:"PATCH_SIZE" json:"PATCH_SIZE"`         // patch side in pixels
	DropPathRate float64 `yaml:"DROP_PATH_RATE" json:"DROP_PATH_RATE"` // stochastic depth rate
}

// Optimizers accepted in SOLVER.OPTIMIZING_METHOD (the reference's
// spellings) and schedulers accepted in SOLVER.SCHEDULER.
var (
	optimizers = []string{"LARS", "SGD", "AdamW"}
	schedulers = []string{"cos", "multistep"}
)

// SolverConfig is the SOLVER section: optimiser and schedules.
type SolverConfig struct {
	// OptimizingMethod is LARS, SGD or AdamW.
	OptimizingMethod string `yaml:"OPTIMIZING_METHOD" json:"OPTIMIZING_METHOD"`
	// WDFactorForBias scales weight decay for biases and norm parameters.
	WDFactorForBias float64 `yaml:"WD_FACTOR_FOR_BIAS" json:"WD_FACTOR_FOR_BIAS"`
	// WDFactorForDW scales weight decay for depth-wise convolutions.
	WDFactorForDW float64 `yaml:"WD_FACTOR_FOR_DW" json:"WD_FACTOR_FOR_DW"`
	// LARSExcludeBias skips LARS adaptation for biases and norm parameters.
	LARSExcludeBias bool `yaml:"LARS_EXCLUDE_BIAS" json:"LARS_EXCLUDE_BIAS"`
	// LARSExcludeDW skips LARS adaptation for depth-wise convolutions.
	LARSExcludeDW bool `yaml:"LARS_EXCLUDE_DW" json:"LARS_EXCLUDE_DW"`
	// WeightDecay is the weight decay at the start (cosine schedule).
	WeightDecay float64 `yaml:"WEIGHT_DECAY" json:"WEIGHT_DECAY"`
	// WeightDecayEnd is the weight decay at the end of training.
	WeightDecayEnd float64 `yaml:"WEIGHT_DECAY_END" json:"WEIGHT_DECAY_END"`
	// TotalEpochs is the length of training.
	TotalEpochs int `yaml:"TOTAL_EPOCHS" json:"TOTAL_EPOCHS"`
	// WarmupEpochs is the linear learning-rate warm-up in epochs.
	WarmupEpochs int `yaml:"WARMUP_EPOCHS" json:"WARMUP_EPOCHS"`
	// WarmupIters is an sslight extension: the warm-up in iterations, for
	// runs too short for whole epochs. 0 (the default) means "use
	// WARMUP_EPOCHS"; setting both non-zero is an error. The reference's
	// WARMUP_EPOCHS is an int and its loader rejects a float there.
	WarmupIters int `yaml:"WARMUP_ITERS" json:"WARMUP_ITERS"`
	// StartWarmup is the learning rate at the first warm-up iteration.
	StartWarmup float64 `yaml:"START_WARMUP" json:"START_WARMUP"`
	// BaseLR is the peak learning rate for a global batch of 256; it is
	// scaled linearly with the global batch size.
	BaseLR float64 `yaml:"BASE_LR" json:"BASE_LR"`
	// MinLR is the learning rate at the end of the cosine schedule.
	MinLR float64 `yaml:"MIN_LR" json:"MIN_LR"`
	// Momentum is the SGD/LARS momentum.
	Momentum float64 `yaml:"MOMENTUM" json:"MOMENTUM"`
	// ClipGrad is the per-parameter gradient-norm clip (0 disables).
	ClipGrad float64 `yaml:"CLIP_GRAD" json:"CLIP_GRAD"`
	// FreezeLastLayer keeps the head's last layer fixed for this many epochs.
	FreezeLastLayer int `yaml:"FREEZE_LAST_LAYER" json:"FREEZE_LAST_LAYER"`
	// FreezeLastLayerIters is an sslight extension: the same in iterations.
	// 0 (the default) means "use FREEZE_LAST_LAYER"; setting both non-zero
	// is an error.
	FreezeLastLayerIters int `yaml:"FREEZE_LAST_LAYER_ITERS" json:"FREEZE_LAST_LAYER_ITERS"`
	// Scheduler is "cos" (cosine with linear warm-up) or "multistep" (÷10
	// at each of MILESTONES). The reference treats any value other than
	// "cos" as multistep; sslight rejects other spellings so a typo such as
	// "cosine" is not silently a step schedule.
	Scheduler string `yaml:"SCHEDULER" json:"SCHEDULER"`
	// Milestones are the multistep epochs.
	Milestones []int `yaml:"MILESTONES" json:"MILESTONES"`
}

// Default returns the reference's defaults (src/config/defaults.py) plus the
// sslight extensions at their neutral values. Each call returns a new,
// independent Config.
func Default() *Config {
	return &Config{
		Train: TrainConfig{
			Dataset:            "imagenet1k",
			NumClasses:         1000,
			FileName:           "train.h5",
			SubsetFilePath:     "",
			BatchSize:          128,
			CheckpointPeriod:   20,
			CheckpointFilePath: "",
			JointLinearProbe:   false,
		},
		Val: ValConfig{
			Dataset:        "imagenet1k",
			FileName:       "val.h5",
			SubsetFilePath: "",
			BatchSize:      128,
		},
		Data: DataConfig{
			PathToDataDir: "datasets/imagenet_ori/",
			Mean:          []float64{0.485, 0.456, 0.406},
			Std:           []float64{0.229, 0.224, 0.225},
			PixelLimit:    178956970,
			ShardSizeMB:   256,
			Format:        FormatImageNet,
		},
		TwoViewsTransforms: TwoViewsTransforms{
			GlobalCropsScale:         []float64{0.08, 1.0},
			GlobalCropSize:           224,
			RandomHorizontalFlipProb: []float64{0.5, 0.5},
			GaussianBlurProb:         []float64{1.0, 0.1},
			ColorJitterProb:          []float64{0.8, 0.8},
			ColorJitterIntensity:     []float64{0.4, 0.4, 0.2, 0.1},
			GreyscaleProb:            []float64{0.2, 0.2},
			CropProb:                 []float64{1.0, 1.0},
			SolarizationProb:         []float64{0.0, 0.2},
		},
		MultiViewsTransforms: MultiViewsTransforms{
			GlobalCropsScale:         []float64{0.25, 1.0},
			LocalCropsScale:          []float64{0.05, 0.25},
			LocalCropsNumber:         6,
			RandomHorizontalFlipProb: []float64{0.5, 0.5},
			GaussianBlurProb:         []float64{1.0, 0.1, 0.5},
			ColorJitterProb:          []float64{0.8, 0.8},
			ColorJitterIntensity:     []float64{0.4, 0.4, 0.2, 0.1},
			GreyscaleProb:            []float64{0.2, 0.2},
			CropProb:                 []float64{1.0, 1.0},
			LocalCropSize:            96,
			GlobalCropSize:           224,
			SolarizationProb:         []float64{0.0, 0.2},
			CropsForAssign:           []int{0, 1},
			NmbCrops:                 []int{2, 6},
			Lambdas:                  []float64{0.142857, 0.857143},
		},
		Model: ModelConfig{
			BackboneArch:     "vit_tiny",
			ModelMomentum:    0.99,
			ModelMomentumEnd: 1.0,
			Width:            1.0,
			SmallImageStem:   false,
		},
		SwAV: SwAVConfig{
			FreezePrototypesEpochs: 1,
			EpochQueueStarts:       15,
			Temperature:            0.1,
			Epsilon:                0.05,
			SinkhornIterations:     3,
			NmbPrototypes:          3000,
			QueueLength:            0,
			OutputDim:              128,
			HiddenSize:             4096,
			NumLayers:              2,
			UseBNInHead:            true,
		},
		MoCo: MoCoConfig{
			Temperature: 0.2,
			GlobalOnly:  false,
			QueueLength: 65536,
			Momentum:    0.999,
			OutputDim:   128,
			HiddenSize:  2048,
			NumLayers:   2,
			UseBNInHead: false,
		},
		DINO: DINOConfig{
			GlobalOnly:              false,
			StudentTemp:             0.1,
			WarmupTeacherTemp:       0.04,
			TeacherTemp:             0.07,
			WarmupTeacherTempEpochs: 30,
			WarmupTeacherTempIters:  0,
			CenterMomentum:          0.9,
		},
		DINOHead: DINOHeadConfig{
			OutputDim:     4096,
			HiddenSize:    2048,
			BottleneckDim: 256,
			NumLayers:     3,
			UseBNInHead:   false,
			NormLastLayer: true,
		},
		ViT: ViTConfig{
			PatchSize:    16,
			DropPathRate: 0.1,
		},
		Solver: SolverConfig{
			OptimizingMethod:     "LARS",
			WDFactorForBias:      0.0,
			WDFactorForDW:        0.0,
			LARSExcludeBias:      true,
			LARSExcludeDW:        false,
			WeightDecay:          1.0e-6,
			WeightDecayEnd:       0.0,
			TotalEpochs:          300,
			WarmupEpochs:         10,
			WarmupIters:          0,
			StartWarmup:          0.0,
			BaseLR:               0.3,
			MinLR:                0.0,
			Momentum:             0.9,
			ClipGrad:             0.0,
			FreezeLastLayer:      0,
			FreezeLastLayerIters: 0,
			Scheduler:            "cos",
			Milestones:           []int{60, 80},
		},
		LogStep:         10,
		LogGrad:         true,
		Stage:           "TRAIN",
		Distributed:     true,
		Seed:            0,
		DistBackend:     "nccl",
		NNodes:          1,
		WorldSize:       1,
		NodeRank:        0,
		DistURL:         "env://",
		Workers:         8,
		UseFP16:         false,
		SSLMethod:       "DINO",
		NumGPUsPerNode:  8,
		TensorboardPath: "/tensorboard",
		OutputDir:       "./tmp",
	}
}

// Clone returns a deep copy: changing the copy's lists does not change c.
func (c *Config) Clone() *Config {
	out := *c
	root := reflect.ValueOf(&out).Elem()
	for _, f := range theSchema().leaves {
		if f.kind != kindFloatList && f.kind != kindIntList {
			continue
		}
		v := root.FieldByIndex(f.path)
		if v.IsNil() {
			continue
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		v.Set(cp)
	}
	return &out
}
