package stdiotap

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigValidateAgent: wrap --agent (and --server) is held to what the HTTP tap accepts as
// an agent id.
func TestConfigValidateAgent(t *testing.T) {
	for _, tc := range []struct {
		agent string
		want  string // "" when valid
	}{
		{agent: ""},
		{agent: "billing-bot"},
		{agent: "spiffe://corp.example/ns/prod/sa/billing bot"},
		{agent: "agent-ü"},
		{agent: strings.Repeat("a", MaxAgentBytes)},
		{agent: strings.Repeat("a", MaxAgentBytes+1), want: "--agent: must be at most 256 bytes, got 257"},
		{agent: "bot\nlevel=error", want: "--agent: must be printable UTF-8 (no control characters)"},
		{agent: "bot\x1b[31m", want: "--agent: must be printable UTF-8"},
		{agent: "bot\tx", want: "--agent: must be printable UTF-8"},
		{agent: "bot\xff", want: "--agent: must be printable UTF-8"},
		{agent: " bot", want: "--agent: must not begin or end with spaces"},
	} {
		t.Run(tc.agent, func(t *testing.T) {
			err := Config{AgentID: tc.agent}.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			// wrap --server goes in every event as well, and is held to the same.
			require.ErrorContains(t, Config{ServerID: tc.agent}.Validate(), strings.Replace(tc.want, "--agent", "--server", 1))
		})
	}
}
