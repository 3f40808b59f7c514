package infra

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// quantitySuffixes are the suffixes of a Kubernetes resource quantity and
// their multipliers, binary (Ki = 1024) and decimal (k = 1000, m = 1/1000).
var quantitySuffixes = map[string]float64{
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
	"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}

// parseQuantity reads a Kubernetes resource quantity ("2", "500m", "8Gi",
// "1e3") as a number of cores or bytes.
func parseQuantity(s string) (float64, error) {
	num := s
	mult := 1.0
	// Longest suffix first: "Mi" before "M"; an exponent (1e3) is a number.
	for _, n := range []int{2, 1} {
		if len(s) <= n {
			continue
		}
		if m, ok := quantitySuffixes[s[len(s)-n:]]; ok {
			num, mult = s[:len(s)-n], m
			break
		}
	}
	// ParseFloat also takes a sign, hex floats, underscores, Inf and NaN,
	// which are no quantities (a sign after the e of an exponent is).
	if num == "" || strings.HasPrefix(num, "+") || strings.HasPrefix(num, "-") || strings.ContainsAny(num, "_ xXpP") {
		return 0, fmt.Errorf("resource quantity %q: want a number with an optional suffix (500m, 2, 8Gi)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("resource quantity %q: want a number with an optional suffix (500m, 2, 8Gi)", s)
	}
	return v * mult, nil
}

// cronField is the range of one field of a five-field cron schedule and the
// names it accepts (jan..dec, sun..sat).
type cronField struct {
	name     string
	min, max int
	names    []string
	anyMark  bool // accepts "?" as "*" (day of month, day of week)
}

var cronFields = []cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31, anyMark: true},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}, anyMark: true},
}

// cronMacros are the schedules Kubernetes accepts by name.
var cronMacros = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// checkCron validates a CronJob schedule in the standard five-field syntax
// (minute hour day-of-month month day-of-week; lists, ranges, steps, month
// and weekday names) or one of the @ macros, naming the bad field.
func checkCron(spec string) error {
	if cronMacros[spec] {
		return nil
	}
	f := strings.Fields(spec)
	if len(f) != len(cronFields) {
		return fmt.Errorf("cron schedule %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", spec, len(f))
	}
	for i, cf := range cronFields {
		if err := cf.check(f[i]); err != nil {
			return fmt.Errorf("cron schedule %q: %s %q: %w", spec, cf.name, f[i], err)
		}
	}
	return nil
}

func (cf cronField) check(field string) error {
	for _, item := range strings.Split(field, ",") {
		rng, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 {
				return fmt.Errorf("step %q is not a positive integer", step)
			}
		}
		if rng == "*" || (cf.anyMark && rng == "?" && !hasStep) {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := cf.value(lo)
		if err != nil {
			return err
		}
		if isRange {
			b, err := cf.value(hi)
			if err != nil {
				return err
			}
			if b < a {
				return fmt.Errorf("range %q runs backwards", rng)
			}
		}
	}
	return nil
}

// value reads one number or name of the field and checks its range.
func (cf cronField) value(s string) (int, error) {
	for i, n := range cf.names {
		if strings.EqualFold(s, n) {
			if cf.min == 1 {
				return i + 1, nil
			}
			return i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < cf.min || v > cf.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, cf.min, cf.max)
	}
	return v, nil
}
