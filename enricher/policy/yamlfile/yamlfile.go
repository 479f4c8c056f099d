package yamlfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Validator is a file's Go shape: it checks itself after decoding, reporting problems as
// config.Errors (or a config.FieldError) whose paths are relative to the document's root.
type Validator interface {
	Validate() error
}

// Problem is one thing wrong in a file.
type Problem struct {
	// Line is the 1-based line of the problem; 0 when unknown.
	Line int
	// Path is the field's path from the document's root, e.g. rules[2].tools[0]; empty for
	// syntax errors.
	Path string
	Msg  string
}

// Error is every problem found in one file. Its message has one line per problem, each
// starting with the file's name: "policy.yml:14: rules[2].tools[0]: …".
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Load reads the file at path into dst; see Decode.
func Load(path string, dst Validator) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	return Decode(data, path, dst)
}

// Decode reads one YAML document from data into dst (a pointer) strictly, keys that match no
// field being errors, then calls dst.Validate. name (normally the file's path) starts every
// line of the error, an *Error. An empty document leaves dst as it is, and validates it.
func Decode(data []byte, name string, dst Validator) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return &Error{File: name, Problems: yamlProblems(err)}
	}
	// A second document would be silently ignored; say so instead.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &Error{File: name, Problems: []Problem{{Line: extra.Line, Msg: "only one YAML document is allowed (another one starts here)"}}}
	} else if !errors.Is(err, io.EOF) {
		return &Error{File: name, Problems: yamlProblems(err)}
	}
	// yaml.Node.Decode cannot refuse unknown keys; a strict decoder over the text can.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return &Error{File: name, Problems: yamlProblems(err)}
	}
	err := dst.Validate()
	if err == nil {
		return nil
	}
	var errs config.Errors
	errs.Merge("", err)
	out := &Error{File: name}
	for _, fe := range errs {
		out.Problems = append(out.Problems, Problem{Line: LineOf(&root, fe.Path), Path: fe.Path, Msg: fe.Msg})
	}
	// In file order, whatever order Validate checked the fields in.
	slices.SortStableFunc(out.Problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return out
}

// yamlLine matches the messages of go.yaml.in/yaml/v3 that carry a line: "yaml: line 3: …" for
// syntax errors and "line 3: …" for each entry of a TypeError.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblems turns a yaml error into problems, with lines where the messages carry them.
func yamlProblems(err error) []Problem {
	msgs := []string{err.Error()}
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	}
	out := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			n, _ := strconv.Atoi(sub[1])
			out = append(out, Problem{Line: n, Msg: sub[2]})
			continue
		}
		out = append(out, Problem{Msg: strings.TrimPrefix(m, "yaml: ")})
	}
	return out
}

// LineOf returns the line of the field at path (keys separated by dots, [i] for list elements)
// in the document root, or of the deepest field on the way that exists (a missing key is
// reported at its parent). It returns 0 for an empty document.
func LineOf(root *yaml.Node, path string) int {
	n := deref(root)
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = deref(n.Content[0])
	}
	line := n.Line
	for _, step := range splitPath(path) {
		var next *yaml.Node
		switch {
		case step.key != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == step.key {
					// The key's line: a block value starts on the next one.
					line, next = n.Content[i].Line, deref(n.Content[i+1])
					break
				}
			}
		case step.key == "" && n.Kind == yaml.SequenceNode && step.index < len(n.Content):
			next = deref(n.Content[step.index])
			line = next.Line
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

type pathStep struct {
	key   string // a mapping key, or "" for an index
	index int
}

// splitPath splits "rules[2].tools[0]" into rules, 2, tools, 0. A malformed index ends the
// path there.
func splitPath(path string) []pathStep {
	var out []pathStep
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return out
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil || i < 0 {
				return out
			}
			out = append(out, pathStep{index: i})
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			out = append(out, pathStep{key: path[:end]})
			path = path[end:]
		}
	}
	return out
}
