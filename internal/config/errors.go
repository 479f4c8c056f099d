package config

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a problem with one configuration field. Path is the field's location in the
// YAML document, with dots between keys and [i] for list elements, e.g.
// "collector.http.upstreams[1].url".
type FieldError struct {
	Path string
	Msg  string
}

// Error returns "path: msg" (or just msg when Path is empty).
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors collects the problems a Validate method finds, so it can report all of them at once:
//
//	var errs config.Errors
//	if c.Listen == "" {
//		errs.Add("listen", "must not be empty")
//	}
//	errs.Merge("http", c.HTTP.Validate())
//	return errs.Err()
type Errors []FieldError

// Add records a problem with the field at path.
func (es *Errors) Add(path, msg string) {
	*es = append(*es, FieldError{Path: path, Msg: msg})
}

// Addf records a problem with the field at path, formatting the message with fmt.Sprintf.
func (es *Errors) Addf(path, format string, args ...any) {
	es.Add(path, fmt.Sprintf(format, args...))
}

// Merge records the problems of a nested section's Validate, putting prefix in front of their
// paths ("http" + "upstreams[1].url" = "http.upstreams[1].url"). An err that is neither Errors
// nor FieldError becomes one problem at prefix. A nil err records nothing.
func (es *Errors) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	if sub, ok := errors.AsType[Errors](err); ok {
		for _, fe := range sub {
			es.Add(JoinPath(prefix, fe.Path), fe.Msg)
		}
		return
	}
	if fe, ok := errors.AsType[FieldError](err); ok {
		es.Add(JoinPath(prefix, fe.Path), fe.Msg)
		return
	}
	es.Add(prefix, err.Error())
}

// Err returns es as an error, or nil when there are no problems. Return it from Validate rather
// than es itself: an empty Errors is a non-nil error value.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Error lists the problems, one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, fe := range es {
		s[i] = fe.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, fe := range es {
		out[i] = fe
	}
	return out
}

// JoinPath joins two parts of a field path: with a dot between keys, without one before an
// index ("upstreams" + "[1]"). Either part may be empty.
func JoinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}
