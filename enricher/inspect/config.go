package inspect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Detector names, for Config.Detectors.
const (
	DetectorInjection     = "injection"      // injection_phrase
	DetectorHiddenUnicode = "hidden_unicode" // hidden_unicode
	DetectorControl       = "control"        // ansi_escape, control_char
	DetectorEncoded       = "encoded"        // encoded_payload
	DetectorScript        = "script"         // script_snippet
	DetectorSecrets       = "secrets"        // secret
	DetectorPII           = "pii"            // pii
	DetectorURLs          = "urls"           // url_not_allowed, markdown_image_exfil
)

// Detectors lists every detector, in the order they run.
var Detectors = []string{
	DetectorInjection, DetectorHiddenUnicode, DetectorControl, DetectorEncoded,
	DetectorScript, DetectorSecrets, DetectorPII, DetectorURLs,
}

// Defaults.
const (
	DefaultMaxFlags       = 32
	DefaultMaxDecodeDepth = 2
	maxDecodeDepthLimit   = 4
)

// Config configures content inspection (enricher.inspection).
type Config struct {
	// Enabled turns inspection on (default true). Off, events pass through without flags and
	// uncaptured content is still dropped.
	Enabled *bool `yaml:"enabled"`
	// Detectors lists the detectors to run (default all): injection, hidden_unicode,
	// control, encoded, script, secrets, pii, urls.
	Detectors []string `yaml:"detectors"`
	// URLAllowlist lists the hosts links may point to: a host (docs.example.com, matched
	// exactly) or a wildcard (*.example.com, any subdomain). Links to other hosts are flagged
	// url_not_allowed. Empty: plain links are not flagged, only image links shaped to carry
	// data out (markdown_image_exfil), which are flagged unless their host is allowed.
	URLAllowlist []string `yaml:"url_allowlist"`
	// MaxDecodeDepth bounds how many times decoded content (base64, hex, percent encoding,
	// Unicode tag text) is decoded and inspected again (default 2, at most 4; 0 is the default).
	MaxDecodeDepth int `yaml:"max_decode_depth"`
	// MaxFlags bounds the flags inspection adds to one event (default 32).
	MaxFlags int `yaml:"max_flags"`
	// HashKey keys the short hashes in evidence (HMAC-SHA256), so that the same secret gives
	// the same hash without the hash being usable to guess it. Empty: a random key per process;
	// set it (the same on every enricher, e.g. ${MCPWATCH_INSPECTION_HASH_KEY}) to correlate
	// findings across restarts and instances.
	HashKey string `yaml:"hash_key"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if len(c.Detectors) == 0 {
		c.Detectors = slices.Clone(Detectors)
	}
	if len(c.URLAllowlist) == 0 {
		c.URLAllowlist = nil // absent and [] mean the same
	}
	if c.MaxDecodeDepth == 0 {
		c.MaxDecodeDepth = DefaultMaxDecodeDepth
	}
	if c.MaxFlags == 0 {
		c.MaxFlags = DefaultMaxFlags
	}
}

// Validate names every invalid field, by its path under the inspection section.
func (c Config) Validate() error {
	var errs config.Errors
	for i, d := range c.Detectors {
		if !slices.Contains(Detectors, d) {
			errs.Addf(fmt.Sprintf("detectors[%d]", i), "unknown detector %q (known: %s)", d, strings.Join(Detectors, ", "))
		}
	}
	for i, h := range c.URLAllowlist {
		if msg := checkAllowedHost(h); msg != "" {
			errs.Add(fmt.Sprintf("url_allowlist[%d]", i), msg)
		}
	}
	if c.MaxDecodeDepth < 0 || c.MaxDecodeDepth > maxDecodeDepthLimit {
		errs.Addf("max_decode_depth", "must be between 0 (default) and %d", maxDecodeDepthLimit)
	}
	if c.MaxFlags < 0 {
		errs.Add("max_flags", "must not be negative")
	}
	return errs.Err()
}

// checkAllowedHost returns what is wrong with an allowlist entry, or "".
func checkAllowedHost(h string) string {
	host := strings.TrimPrefix(h, "*.")
	switch {
	case host == "":
		return "must be a host or *.domain"
	case strings.Contains(host, "://"):
		return "must be a host, not a URL (drop the scheme)"
	case strings.ContainsAny(host, "*/?# \t@"):
		return "must be a host or *.domain (a * only as the first label)"
	}
	return ""
}
