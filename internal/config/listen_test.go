package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1":         true,
		"127.1.2.3":         true,
		"::1":               true,
		"::ffff:127.0.0.1":  true,
		"localhost":         true,
		"LocalHost":         true,
		"":                  false, // ":7400" binds every interface
		"0.0.0.0":           false,
		"::":                false,
		"10.1.2.3":          false,
		"localhost.":        false, // a name resolved like any other
		"mcpwatch.internal": false,
		"[::1]":             false, // a host as SplitHostPort returns it, without brackets
	} {
		require.Equal(t, want, IsLoopbackHost(host), "host %q", host)
	}
}
