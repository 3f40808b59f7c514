package evaluate

import (
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/trainer/eval"
)

// knnProtocol scores DINO's weighted kNN on the features for every k and
// records k = 20 (or the only k) in row.
func knnProtocol(trainF, valF eval.Features, classes int, row *report.Row) error {
	res, err := eval.KNN(trainF, valF, classes, eval.DefaultKs(), eval.DefaultKNNTemperature)
	if err != nil {
		return err
	}
	var desc []string
	for _, r := range res {
		desc = append(desc, fmt.Sprintf("k=%d %.2f/%.2f", r.K, r.Top1, r.Top5))
		if r.K == 20 || len(res) == 1 {
			row.Metrics["knn_top1"] = r.Top1
			if r.HasTop5 {
				row.Metrics["knn_top5"] = r.Top5
			}
		}
	}
	row.Protocols[ProtocolKNN] = fmt.Sprintf("DINO weighted kNN on L2-normalised features, T=%.2f, %d train / %d val images; table shows k=20; top-1/top-5 by k: %s",
		eval.DefaultKNNTemperature, trainF.Len(), valF.Len(), strings.Join(desc, ", "))
	return nil
}
