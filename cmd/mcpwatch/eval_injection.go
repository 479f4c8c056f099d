package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/mcpwatch/mcpwatch/enricher/inspect"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const evalInjectionUsage = `Usage:
  mcpwatch eval injection [--benign F]… [--malicious F]… [--types T,…] [-o table|json]

Runs content inspection (enricher.inspection, default settings) over prompts and prints the
share of each set it flags: false positives on --benign prompts, detections on --malicious
ones. A prompt counts as flagged when inspection gives it a flag of one of --types (default
injection_phrase: instruction-like phrasing; flags of other types, such as script_snippet on
attack code, do not count). Each prompt is inspected as one string, as a tool result or
description would be.

A file is a JSON array of strings, or of objects with a "prompt" field (NotInject), or an
object mapping category names to such arrays (BIPIA's attack files); the shape is detected.
Both flags may be repeated; give at least one of them.

Flags:
`

// injectionCount is how many prompts of a set, file or category were flagged.
type injectionCount struct {
	Name    string  `json:"name"`
	Prompts int     `json:"prompts"`
	Flagged int     `json:"flagged"`
	Share   float64 `json:"share"`
}

func (c *injectionCount) add(flagged bool) {
	c.Prompts++
	if flagged {
		c.Flagged++
	}
	c.Share = float64(c.Flagged) / float64(c.Prompts)
}

// injectionFile is one input file's result.
type injectionFile struct {
	injectionCount
	Set        string           `json:"set"` // benign or malicious
	Categories []injectionCount `json:"categories,omitempty"`
}

// injectionReport is the output of eval injection.
type injectionReport struct {
	Types     []string        `json:"types"`
	Benign    *injectionCount `json:"benign,omitempty"`
	Malicious *injectionCount `json:"malicious,omitempty"`
	Files     []injectionFile `json:"files"`
}

func runEvalInjection(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval injection", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var benign, malicious stringList
	fs.Var(&benign, "benign", "benign prompts `FILE` (repeatable)")
	fs.Var(&malicious, "malicious", "malicious prompts `FILE` (repeatable)")
	types := fs.String("types", strings.Join(inspect.InjectionTypes, ","), "comma-separated flag `types` that count as flagged")
	format := fs.String("o", outputTable, "output `format`: table or json")
	fs.Usage = func() { fmt.Fprint(fs.Output(), evalInjectionUsage); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "mcpwatch eval injection: %s\nRun 'mcpwatch eval injection --help' for usage.\n", fmt.Sprintf(format, args...))
		return exitUsage
	}
	counted := strings.Split(*types, ",")
	for _, t := range counted {
		if !slices.Contains(inspectFlagTypes, t) {
			return usageErr("--types: unknown flag type %q (known: %s)", t, strings.Join(inspectFlagTypes, ", "))
		}
	}
	switch {
	case len(benign)+len(malicious) == 0:
		return usageErr("give --benign or --malicious prompts")
	case *format != outputTable && *format != outputJSON:
		return usageErr("-o: must be table or json, got %q", *format)
	}

	in, err := inspect.New(inspect.Config{})
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch eval injection:", err)
		return exitFailure
	}
	rep := injectionReport{Types: counted}
	for _, set := range []struct {
		name  string
		files []string
		total **injectionCount
	}{{"benign", benign, &rep.Benign}, {"malicious", malicious, &rep.Malicious}} {
		for _, path := range set.files {
			prompts, err := readPrompts(path)
			if err != nil {
				fmt.Fprintln(stderr, "mcpwatch eval injection:", err)
				return exitFailure
			}
			if *set.total == nil {
				*set.total = &injectionCount{Name: set.name}
			}
			f := injectionFile{injectionCount: injectionCount{Name: filepath.Base(path)}, Set: set.name}
			cats := map[string]*injectionCount{}
			var order []string
			for _, p := range prompts {
				flagged := flaggedAs(in.Text("$", p.text, nil), counted)
				f.add(flagged)
				(*set.total).add(flagged)
				if p.category == "" {
					continue
				}
				c, ok := cats[p.category]
				if !ok {
					c = &injectionCount{Name: p.category}
					cats[p.category] = c
					order = append(order, p.category)
				}
				c.add(flagged)
			}
			for _, name := range order {
				f.Categories = append(f.Categories, *cats[name])
			}
			rep.Files = append(rep.Files, f)
			fmt.Fprintf(stderr, "%s: %d %s prompts\n", path, f.Prompts, set.name)
		}
	}
	if *format == outputJSON {
		err = printJSON(stdout, rep)
	} else {
		err = printEvalInjection(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch eval injection:", err)
		return exitFailure
	}
	return exitOK
}

// inspectFlagTypes are the flag types --types accepts.
var inspectFlagTypes = []string{
	inspect.TypeInjection, inspect.TypeHiddenUnicode, inspect.TypeANSIEscape, inspect.TypeControlChar,
	inspect.TypeEncodedPayload, inspect.TypeScript, inspect.TypeSecret, inspect.TypePII,
	inspect.TypeURLNotAllowed, inspect.TypeImageExfil,
}

func flaggedAs(flags []schemas.Flag, types []string) bool {
	for _, f := range flags {
		if slices.Contains(types, f.Type) {
			return true
		}
	}
	return false
}

type prompt struct{ category, text string }

// readPrompts reads a JSON array of strings or of objects with a "prompt" field, or an
// object mapping categories to such arrays.
func readPrompts(path string) ([]prompt, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read prompts: %w", err)
	}
	var byCategory map[string]json.RawMessage
	if err := json.Unmarshal(b, &byCategory); err == nil {
		names := make([]string, 0, len(byCategory))
		for name := range byCategory {
			names = append(names, name)
		}
		sort.Strings(names) // JSON objects have no order
		var out []prompt
		for _, name := range names {
			ps, err := promptList(byCategory[name])
			if err != nil {
				return nil, fmt.Errorf("%s: category %q: %w", path, name, err)
			}
			for _, p := range ps {
				out = append(out, prompt{category: name, text: p})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no prompts", path)
		}
		return out, nil
	}
	ps, err := promptList(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make([]prompt, len(ps))
	for i, p := range ps {
		out[i] = prompt{text: p}
	}
	return out, nil
}

// promptList decodes an array of strings or of objects with a "prompt" field.
func promptList(raw json.RawMessage) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("want a JSON array of strings or of objects with a \"prompt\" field, or an object of such arrays: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("no prompts")
	}
	out := make([]string, len(items))
	for i, it := range items {
		if json.Unmarshal(it, &out[i]) == nil {
			continue
		}
		var obj struct {
			Prompt *string `json:"prompt"`
		}
		if json.Unmarshal(it, &obj) != nil || obj.Prompt == nil {
			return nil, fmt.Errorf("element %d is neither a string nor an object with a \"prompt\" string", i)
		}
		out[i] = *obj.Prompt
	}
	return out, nil
}

func printEvalInjection(w io.Writer, rep injectionReport) error {
	t := newTextTable(w, "SET", "FILE / CATEGORY", "PROMPTS", "FLAGGED", "SHARE")
	share := func(c injectionCount) string { return fmt.Sprintf("%.1f%%", 100*c.Share) }
	for _, f := range rep.Files {
		t.row(f.Set, f.Name, fmt.Sprint(f.Prompts), fmt.Sprint(f.Flagged), share(f.injectionCount))
		for _, c := range f.Categories {
			t.row("", "  "+c.Name, fmt.Sprint(c.Prompts), fmt.Sprint(c.Flagged), share(c))
		}
	}
	for _, total := range []*injectionCount{rep.Benign, rep.Malicious} {
		if total != nil {
			t.row(total.Name, "total", fmt.Sprint(total.Prompts), fmt.Sprint(total.Flagged), share(*total))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nflagged: a flag of type %s\n", strings.Join(rep.Types, " or "))
	return err
}
