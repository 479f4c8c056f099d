// Package config loads mcpwatch's YAML configuration into the Config structs the packages
// export, and gives their Validate methods a common way to report problems.
//
// Load and Decode read one YAML document strictly: keys that match no field are errors, and every
// error names the file and, when YAML knows it, the line ("mcpwatch.yml:12: field lisen not
// found in type api.Config"). Before decoding, environment variables are expanded in the text:
//
//	${VAR}           the value of VAR; an error if VAR is not set
//	${VAR:-default}  the value of VAR, or default when VAR is unset or empty
//	$$               a literal $ (so "$${VAR}" is the text ${VAR})
//
// A $ followed by anything else is kept as it is, and lines whose first non-blank character is #
// (YAML comments, e.g. commented-out settings) are not expanded. Values are substituted as
// text, so quote a value that may contain YAML syntax (": ", " #", a leading "*" or "&"): for
// example password: "${DB_PASSWORD}".
//
// If the destination implements Defaulter, SetDefaults is called before decoding, so the file
// only overrides what it mentions: a struct field or section that is absent or null keeps its
// default, a map is merged key by key into the default map, and a list replaces the default list
// (elements of a list of structs get no defaults; check them in Validate). If the destination
// implements Validator, Validate is called after decoding; FieldError and Errors let it report
// every problem with the path of the field, e.g.
// "collector.http.upstreams[1].url: must be an absolute http(s) URL".
//
// Durations need no special type: a time.Duration field decodes from a string that
// time.ParseDuration accepts ("250ms", "5s", "1h30m"), and a bare number ("5") is rejected
// as an error rather than silently read as nanoseconds.
package config
