package config

import (
	"bytes"
	"fmt"
	"strings"
)

// expandEnv replaces ${VAR} and ${VAR:-default} in data with values from lookup and $$ with $;
// see the package documentation. Comment lines are copied unchanged. Errors are *lineError.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data))
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]

		if bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("#")) {
			out.Write(line)
			continue
		}
		for len(line) > 0 {
			i := bytes.IndexByte(line, '$')
			if i < 0 {
				out.Write(line)
				break
			}
			out.Write(line[:i])
			rest := line[i+1:]
			switch {
			case bytes.HasPrefix(rest, []byte("$")):
				out.WriteByte('$')
				line = rest[1:]
			case bytes.HasPrefix(rest, []byte("{")):
				end := bytes.IndexByte(rest, '}')
				if end < 0 {
					return nil, &lineError{line: lineNo, msg: "unterminated ${ (write $$ for a literal $)"}
				}
				val, err := expandVar(string(rest[1:end]), lookup)
				if err != nil {
					return nil, &lineError{line: lineNo, msg: err.Error()}
				}
				out.WriteString(val)
				line = rest[end+1:]
			default: // a lone $ stays as it is
				out.WriteByte('$')
				line = rest
			}
		}
	}
	return out.Bytes(), nil
}

// expandVar resolves the inside of ${…}: NAME or NAME:-default.
func expandVar(expr string, lookup func(string) (string, bool)) (string, error) {
	name, def, hasDefault := strings.Cut(expr, ":-")
	if !validVarName(name) {
		return "", fmt.Errorf("invalid environment variable name %q in ${%s}", name, expr)
	}
	val, ok := lookup(name)
	switch {
	case hasDefault && val == "":
		return def, nil
	case !ok:
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
	}
	return val, nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
