package cli

import "strings"

// Suggest returns the candidate closest to word when it is close enough to
// be the likely intent — a typo (`--shard` for `--shards`, `pretrian` for
// `pretrain`) — and "" otherwise. Closeness is the edit distance
// (insertions, deletions, substitutions and adjacent transpositions), at
// most a third of the word's length (and at least 1) with no other
// candidate as close, or word being a prefix of exactly one candidate.
func Suggest(word string, candidates []string) string {
	word = strings.ToLower(word)
	limit := max(1, len([]rune(word))/3)
	best, bestDist, tie := "", limit+1, false
	for _, c := range candidates {
		switch d := editDistance(word, strings.ToLower(c)); {
		case d < bestDist:
			best, bestDist, tie = c, d, false
		case d == bestDist:
			tie = true
		}
	}
	if best != "" && !tie {
		return best
	}
	var prefixed []string
	for _, c := range candidates {
		if len(word) >= 3 && strings.HasPrefix(strings.ToLower(c), word) {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// editDistance is the optimal-string-alignment distance of a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
