// Package yamlfile loads the enricher's own rule files (the policy and the inventory) strictly,
// and reports every problem at its line, so `mcpwatch config check` and a failed reload can
// say exactly what to fix: YAML syntax and type errors where the parser finds them, unknown
// keys, and each problem the destination's Validate reports at the line of the field its path
// names ("policy.yml:14: rules[2].tools[0]: invalid glob \"[\": …").
//
// Unlike the main configuration file, these files are not expanded for environment
// variables: regular expressions in them use $ freely.
package yamlfile
