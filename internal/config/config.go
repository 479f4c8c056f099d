package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Defaulter is implemented by configs with default values. Load calls SetDefaults before
// decoding, so values in the file override the defaults.
type Defaulter interface {
	SetDefaults()
}

// Validator is implemented by configs that check themselves. Load calls Validate after decoding.
type Validator interface {
	Validate() error
}

// Load reads the YAML file at path into dst (a pointer); see Decode.
func Load(path string, dst any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read config: %w", err)
	}
	defer f.Close()
	return Decode(f, path, dst)
}

// Decode reads one YAML document from r into dst (a pointer). name is used in errors, normally
// the file's path. Environment variables are expanded first; then dst's SetDefaults is called
// if it has one, the document is decoded strictly (unknown keys are errors), and dst's Validate
// is called if it has one. An empty document leaves dst at its defaults.
//
// Every line of a returned error starts with "name:" or "name:LINE:". A Validate error is
// wrapped, so errors.As finds an Errors or FieldError it returned.
func Decode(r io.Reader, name string, dst any) error {
	if v := reflect.ValueOf(dst); v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("cannot decode config %s into %T: need a non-nil pointer", name, dst)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("cannot read config %s: %w", name, err)
	}
	data, err = expandEnv(data, os.LookupEnv)
	if err != nil {
		return &fileError{name: name, err: err}
	}
	if d, ok := dst.(Defaulter); ok {
		d.SetDefaults()
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return &fileError{name: name, err: yamlError(err)}
	}
	// A second document would be silently ignored; say so instead.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &fileError{name: name, err: &lineError{line: extra.Line, msg: "only one YAML document is allowed (another one starts here)"}}
	} else if !errors.Is(err, io.EOF) {
		return &fileError{name: name, err: yamlError(err)}
	}

	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			return &fileError{name: name, err: err}
		}
	}
	return nil
}

// lineError is a problem at a line of the document.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.msg }

// lineErrors are several problems found in one pass (yaml reports all type errors at once).
type lineErrors []*lineError

func (es lineErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// yamlLine matches the messages of go.yaml.in/yaml/v3 that carry a line: "yaml: line 3: …" for
// syntax errors and "line 3: …" for each entry of a TypeError.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml error into lineErrors where the message carries a line number.
func yamlError(err error) error {
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out lineErrors
	for _, m := range msgs {
		sub := yamlLine.FindStringSubmatch(m)
		if sub == nil {
			return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		n, _ := strconv.Atoi(sub[1])
		out = append(out, &lineError{line: n, msg: sub[2]})
	}
	return out
}

// fileError prefixes every line of err's message with the file name, and the line number when
// err carries one, so each line of output stands on its own ("mcpwatch.yml:3: …").
type fileError struct {
	name string
	err  error
}

func (e *fileError) Unwrap() error { return e.err }

func (e *fileError) Error() string {
	var les []*lineError
	switch err := e.err.(type) {
	case *lineError:
		les = []*lineError{err}
	case lineErrors:
		les = err
	}
	var b strings.Builder
	if les != nil {
		for i, le := range les {
			if i > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "%s:%d: %s", e.name, le.line, le.msg)
		}
		return b.String()
	}
	for i, line := range strings.Split(e.err.Error(), "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.name + ": " + line)
	}
	return b.String()
}
