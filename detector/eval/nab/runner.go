package nab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"
)

// DetectorName names the result files: OUT/<category>/mcpwatch_<file>.csv.
const DetectorName = "mcpwatch"

// Options configure Run.
type Options struct {
	// DataDir is a NAB checkout (or a copy of its data/, labels/ and profiles.json).
	DataDir string
	// OutDir receives the result files; empty writes none.
	OutDir string
	// Progress receives one line per file scored; nil is silent.
	Progress io.Writer
	// Detector scores a series (one anomaly score in [0, 1] per row); nil runs the
	// request-rate model (RateScores).
	Detector func(Series) ([]float64, error)
}

// Report is the outcome of Run: one Result per profile, in the order of the profiles.
type Report struct {
	Detector string   `json:"detector"`
	Files    int      `json:"files"`
	Rows     int      `json:"rows"`
	Windows  int      `json:"windows"`
	Results  []Result `json:"results"`
}

// Result returns the result of the named profile.
func (r Report) Result(profile string) (Result, bool) {
	for _, res := range r.Results {
		if res.Profile == profile {
			return res, true
		}
	}
	return Result{}, false
}

// Run scores every series of the corpus at opts.DataDir with the detector, writes NAB-format
// result files, and scores them under every profile (DataDir/profiles.json, or NAB's three).
func Run(ctx context.Context, opts Options) (Report, error) {
	detect := opts.Detector
	if detect == nil {
		detect = RateScores
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	corpus, err := LoadCorpus(opts.DataDir)
	if err != nil {
		return Report{}, err
	}
	windows, err := LoadWindows(filepath.Join(opts.DataDir, "labels", "combined_windows.json"))
	if err != nil {
		return Report{}, err
	}
	profiles := DefaultProfiles()
	if ps, err := LoadProfiles(filepath.Join(opts.DataDir, "profiles.json")); err == nil {
		profiles = ps
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Report{}, err
	}

	rep := Report{Detector: DetectorName}
	files := make([]File, 0, len(corpus))
	for i, s := range corpus {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		ws, ok := windows[s.Name]
		if !ok {
			return Report{}, fmt.Errorf("cannot score %s: it has no entry in the labels", s.Name)
		}
		start := time.Now()
		scores, err := detect(s)
		if err != nil {
			return Report{}, err
		}
		if len(scores) != len(s.Values) {
			return Report{}, fmt.Errorf("cannot score %s: the detector returned %d scores for %d rows", s.Name, len(scores), len(s.Values))
		}
		if opts.OutDir != "" {
			if err := writeResults(opts.OutDir, s, scores, ws); err != nil {
				return Report{}, err
			}
		}
		files = append(files, File{Name: s.Name, Times: s.Times, Scores: scores, Windows: ws})
		rep.Files++
		rep.Rows += len(s.Values)
		rep.Windows += len(ws)
		fmt.Fprintf(progress, "[%d/%d] %s: %d rows in %s\n", i+1, len(corpus), s.Name, len(s.Values), time.Since(start).Round(time.Millisecond))
	}
	for _, p := range profiles {
		rep.Results = append(rep.Results, Score(files, p))
	}
	return rep, nil
}

// writeResults writes OUT/<category>/mcpwatch_<file>.csv as NAB does: timestamp, value,
// anomaly_score and label (1 inside a labelled window).
func writeResults(outDir string, s Series, scores []float64, ws []Window) error {
	dir, file := path.Split(s.Name)
	p := filepath.Join(outDir, filepath.FromSlash(dir), DetectorName+"_"+file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cannot write results: %w", err)
	}
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("cannot write results: %w", err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("timestamp,value,anomaly_score,label\n")
	for i, raw := range s.Raw {
		label := "0"
		if inWindow(s.Times[i], ws) {
			label = "1"
		}
		w.WriteString(raw[0])
		w.WriteByte(',')
		w.WriteString(raw[1])
		w.WriteByte(',')
		w.WriteString(strconv.FormatFloat(scores[i], 'g', -1, 64))
		w.WriteByte(',')
		w.WriteString(label)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write results %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write results %s: %w", p, err)
	}
	return nil
}
