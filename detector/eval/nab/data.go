package nab

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// timeLayout is NAB's timestamp format; fractional seconds ("…:00.000000" in the labels) are
// accepted by time.Parse without being in the layout.
const timeLayout = "2006-01-02 15:04:05"

// Series is one NAB data file.
type Series struct {
	// Name is the path under data/, e.g. "realKnownCause/nyc_taxi.csv"; labels are keyed by it.
	Name string
	// Times and Values are the rows in file order. Timestamps mostly increase, but NAB's
	// files repeat or step back an hour where clocks changed, so nothing assumes they do.
	// Raw keeps each row's original timestamp and
	// value text so result files repeat them exactly.
	Times  []time.Time
	Values []float64
	Raw    [][2]string
}

// Window is a labelled anomaly window; both ends are inclusive.
type Window struct {
	Start, End time.Time
}

// CostMatrix holds a profile's weights, as in NAB's profiles.json.
type CostMatrix struct {
	TP float64 `json:"tpWeight"`
	FP float64 `json:"fpWeight"`
	FN float64 `json:"fnWeight"`
	TN float64 `json:"tnWeight"`
}

// Profile is a named cost matrix.
type Profile struct {
	Name string
	Cost CostMatrix
}

// NAB's profile names.
const (
	ProfileStandard    = "standard"
	ProfileRewardLowFP = "reward_low_FP_rate"
	ProfileRewardLowFN = "reward_low_FN_rate"
)

// DefaultProfiles are NAB's three profiles, used when the data directory has no profiles.json.
func DefaultProfiles() []Profile {
	return []Profile{
		{ProfileStandard, CostMatrix{TP: 1, FP: 0.11, FN: 1, TN: 1}},
		{ProfileRewardLowFP, CostMatrix{TP: 1, FP: 0.22, FN: 1, TN: 1}},
		{ProfileRewardLowFN, CostMatrix{TP: 1, FP: 0.11, FN: 2, TN: 1}},
	}
}

// LoadProfiles reads NAB's profiles.json ({"name": {"CostMatrix": {...}}}), sorted by name.
func LoadProfiles(path string) ([]Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read profiles: %w", err)
	}
	var raw map[string]struct {
		CostMatrix *CostMatrix `json:"CostMatrix"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("cannot parse profiles %s: %w", path, err)
	}
	var ps []Profile
	for name, p := range raw {
		if p.CostMatrix == nil {
			return nil, fmt.Errorf("cannot parse profiles %s: profile %q has no CostMatrix", path, name)
		}
		ps = append(ps, Profile{Name: name, Cost: *p.CostMatrix})
	}
	slices.SortFunc(ps, func(a, b Profile) int { return strings.Compare(a.Name, b.Name) })
	return ps, nil
}

// LoadWindows reads NAB's combined_windows.json: data file name → windows, sorted by start.
func LoadWindows(path string) (map[string][]Window, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read labels: %w", err)
	}
	var raw map[string][][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("cannot parse labels %s: %w", path, err)
	}
	out := make(map[string][]Window, len(raw))
	for name, ws := range raw {
		list := make([]Window, 0, len(ws))
		for i, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("cannot parse labels %s: %s window %d has %d timestamps, want 2", path, name, i, len(w))
			}
			start, err := time.Parse(timeLayout, w[0])
			if err != nil {
				return nil, fmt.Errorf("cannot parse labels %s: %s window %d: %w", path, name, i, err)
			}
			end, err := time.Parse(timeLayout, w[1])
			if err != nil {
				return nil, fmt.Errorf("cannot parse labels %s: %s window %d: %w", path, name, i, err)
			}
			if end.Before(start) {
				return nil, fmt.Errorf("cannot parse labels %s: %s window %d ends before it starts", path, name, i)
			}
			list = append(list, Window{Start: start, End: end})
		}
		slices.SortFunc(list, func(a, b Window) int { return a.Start.Compare(b.Start) })
		out[name] = list
	}
	return out, nil
}

// LoadSeries reads one `timestamp,value` CSV file; name is its path under data/.
func LoadSeries(path, name string) (Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return Series{}, fmt.Errorf("cannot read series: %w", err)
	}
	defer f.Close()
	s, err := ReadSeries(bufio.NewReader(f), name)
	if err != nil {
		return Series{}, fmt.Errorf("cannot read series %s: %w", path, err)
	}
	return s, nil
}

// ReadSeries parses a `timestamp,value` CSV with a header row.
func ReadSeries(r io.Reader, name string) (Series, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return Series{}, fmt.Errorf("cannot read header: %w", err)
	}
	if len(header) < 2 || strings.TrimSpace(header[0]) != "timestamp" || strings.TrimSpace(header[1]) != "value" {
		return Series{}, fmt.Errorf("header is %q, want timestamp,value", strings.Join(header, ","))
	}
	s := Series{Name: name}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Series{}, err
		}
		if len(rec) < 2 {
			return Series{}, fmt.Errorf("line %d: want 2 fields, got %d", line, len(rec))
		}
		t, err := time.Parse(timeLayout, strings.TrimSpace(rec[0]))
		if err != nil {
			return Series{}, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return Series{}, fmt.Errorf("line %d: %w", line, err)
		}
		s.Times = append(s.Times, t)
		s.Values = append(s.Values, v)
		s.Raw = append(s.Raw, [2]string{rec[0], rec[1]})
	}
	if len(s.Times) == 0 {
		return Series{}, errors.New("no rows")
	}
	return s, nil
}

// LoadCorpus reads every data/<category>/<file>.csv under dir, sorted by name.
func LoadCorpus(dir string) ([]Series, error) {
	root := filepath.Join(dir, "data")
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".csv") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list NAB data: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("cannot find NAB data: no CSV files under %s", root)
	}
	slices.Sort(names)
	out := make([]Series, 0, len(names))
	for _, name := range names {
		s, err := LoadSeries(filepath.Join(root, filepath.FromSlash(name)), name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// inWindow reports whether t lies in one of the windows.
func inWindow(t time.Time, ws []Window) bool {
	for _, w := range ws {
		if !t.Before(w.Start) && !t.After(w.End) {
			return true
		}
	}
	return false
}
