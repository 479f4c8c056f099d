package inspect

import (
	"math"
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// minSecretRun is the shortest run of token characters the secret detector looks at.
const minSecretRun = 16

// secretPrefix is a credential recognised by its prefix: the prefix, then at least min
// characters of the token alphabet.
type secretPrefix struct {
	prefix string
	rule   string
	min    int
	sev    schemas.Severity
	// check, when set, must accept the whole run.
	check func(run string) bool
}

var secretPrefixes = []secretPrefix{
	{prefix: "AKIA", rule: "aws_access_key", min: 16, sev: schemas.SeverityHigh, check: awsKeyID},
	{prefix: "ASIA", rule: "aws_access_key", min: 16, sev: schemas.SeverityHigh, check: awsKeyID},
	{prefix: "AIza", rule: "gcp_api_key", min: 35, sev: schemas.SeverityHigh},
	{prefix: "ya29.", rule: "gcp_oauth_token", min: 30, sev: schemas.SeverityHigh},
	{prefix: "ghp_", rule: "github_token", min: 36, sev: schemas.SeverityHigh},
	{prefix: "gho_", rule: "github_token", min: 36, sev: schemas.SeverityHigh},
	{prefix: "ghu_", rule: "github_token", min: 36, sev: schemas.SeverityHigh},
	{prefix: "ghs_", rule: "github_token", min: 36, sev: schemas.SeverityHigh},
	{prefix: "ghr_", rule: "github_token", min: 36, sev: schemas.SeverityHigh},
	{prefix: "github_pat_", rule: "github_token", min: 60, sev: schemas.SeverityHigh},
	{prefix: "glpat-", rule: "gitlab_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "gldt-", rule: "gitlab_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "glrt-", rule: "gitlab_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "glptt-", rule: "gitlab_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "xoxb-", rule: "slack_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "xoxp-", rule: "slack_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "xoxa-", rule: "slack_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "xoxr-", rule: "slack_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "xoxs-", rule: "slack_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "xapp-", rule: "slack_token", min: 20, sev: schemas.SeverityHigh},
	{prefix: "sk_live_", rule: "stripe_key", min: 20, sev: schemas.SeverityHigh},
	{prefix: "rk_live_", rule: "stripe_key", min: 20, sev: schemas.SeverityHigh},
	{prefix: "sk_test_", rule: "stripe_key", min: 20, sev: schemas.SeverityMedium},
	{prefix: "whsec_", rule: "stripe_key", min: 24, sev: schemas.SeverityHigh},
	{prefix: "sk-ant-", rule: "anthropic_key", min: 40, sev: schemas.SeverityHigh},
	{prefix: "sk-proj-", rule: "openai_key", min: 40, sev: schemas.SeverityHigh},
	{prefix: "sk-svcacct-", rule: "openai_key", min: 40, sev: schemas.SeverityHigh},
	{prefix: "sk-admin-", rule: "openai_key", min: 40, sev: schemas.SeverityHigh},
	{prefix: "sk-", rule: "api_key", min: 32, sev: schemas.SeverityHigh},
	{prefix: "npm_", rule: "npm_token", min: 36, sev: schemas.SeverityHigh},
	{prefix: "pypi-AgE", rule: "pypi_token", min: 50, sev: schemas.SeverityHigh},
	{prefix: "hf_", rule: "huggingface_token", min: 30, sev: schemas.SeverityHigh},
	{prefix: "SG.", rule: "sendgrid_key", min: 60, sev: schemas.SeverityHigh},
	{prefix: "shpat_", rule: "shopify_token", min: 32, sev: schemas.SeverityHigh},
	{prefix: "dop_v1_", rule: "digitalocean_token", min: 64, sev: schemas.SeverityHigh},
	{prefix: "eyJ", rule: "jwt", min: 30, sev: schemas.SeverityMedium, check: isJWT},
}

func awsKeyID(run string) bool {
	if len(run) != 20 {
		return false
	}
	for i := 4; i < 20; i++ {
		if c := run[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// isJWT: three dot-separated base64url segments, the first two JSON objects ("eyJ" is "{").
func isJWT(run string) bool {
	parts := strings.Split(run, ".")
	return len(parts) == 3 && len(parts[1]) >= 4 && strings.HasPrefix(parts[1], "eyJ")
}

// secrets finds credentials: private key blocks, tokens with a known prefix, Azure keys and
// connection strings, and long high-entropy strings that are not hex (hashes, git SHAs),
// UUIDs or encoded text. It returns the spans it flagged, which the encoded-payload and PII
// detectors then skip.
func (j *job) secrets(s string, f *features) []span {
	j.sc.spans = j.sc.spans[:0]
	flag := func(rule string, sev schemas.Severity, start, end int) {
		j.sc.spans = append(j.sc.spans, span{start, end})
		j.add(TypeSecret, sev, "rule="+rule+" "+loc(start, end)+" hash="+j.hash(s[start:end]))
	}
	if f.dashes {
		for from := 0; ; {
			i := strings.Index(s[from:], "-----BEGIN ")
			if i < 0 {
				break
			}
			i += from
			line := s[i:min(len(s), i+60)]
			endHdr := strings.Index(line[11:], "-----")
			if endHdr < 0 {
				break
			}
			hdr := line[11 : 11+endHdr]
			from = i + 11 + endHdr + 5
			if !strings.HasSuffix(hdr, "PRIVATE KEY") && !strings.HasSuffix(hdr, "PRIVATE KEY BLOCK") {
				continue
			}
			end := len(s)
			if k := strings.Index(s[from:], "-----END "); k >= 0 {
				end = from + k
				if e := strings.Index(s[end+9:], "-----"); e >= 0 {
					end += 9 + e + 5
				}
			}
			flag("private_key", schemas.SeverityCritical, i, end)
			from = end
		}
	}
	if f.maxRun >= minSecretRun {
		ls := j.sc.ls
		// Azure storage keys and SAS signatures travel in connection strings and URLs.
		for _, kv := range []struct{ key, rule string }{{"accountkey=", "azure_storage_key"}, {"sharedaccesskey=", "azure_storage_key"}, {"sig=", "azure_sas"}} {
			if i := strings.Index(ls, kv.key); i >= 0 {
				start := i + len(kv.key)
				end := start
				for end < len(s) && (byteClass[s[end]]&bB64 != 0 || s[end] == '%') {
					end++
				}
				if end-start >= 30 && !inSpans(j.sc.spans, start) {
					flag(kv.rule, schemas.SeverityHigh, start, end)
				}
			}
		}
		for i := 0; i < len(s); {
			for i < len(s) && byteClass[s[i]]&bRun == 0 {
				i++
			}
			start := i
			for i < len(s) && byteClass[s[i]]&bRun != 0 {
				i++
			}
			if i-start < minSecretRun || inSpans(j.sc.spans, start) {
				continue
			}
			j.secretRun(s, start, i, flag)
		}
	}
	return j.sc.spans
}

// secretRun looks at one run of token characters.
func (j *job) secretRun(s string, start, end int, flag func(rule string, sev schemas.Severity, start, end int)) {
	run := s[start:end]
	// A run may hold a token after a separator (key=..., path/...): try at each boundary.
	for off := 0; off < len(run); {
		if n := j.prefixed(run, off, start, flag); n > 0 {
			off += n
			continue
		}
		k := strings.IndexAny(run[off+1:], "=/:.+")
		if k < 0 {
			break
		}
		off += k + 2
	}
	// What no prefix named: long, random-looking, and not a hash, a UUID or encoded text.
	if isSRIHash(run) {
		return
	}
	encodedText := -1 // unknown; 1 when the run is base64 of text (the encoded detector's)
	for p := 0; p < len(run); {
		q := p
		for q < len(run) && strings.IndexByte("./=:~", run[q]) < 0 {
			q++
		}
		if n := q - p; n >= 20 && n <= 200 && !inSpans(j.sc.spans, start+p) && highEntropy(run[p:q]) {
			if encodedText < 0 {
				encodedText = 0
				if j.sc.decodeBase64(run) != "" {
					encodedText = 1
				}
			}
			if encodedText == 0 {
				flag("high_entropy", schemas.SeverityLow, start+p, start+q)
			}
		}
		p = q + 1
	}
}

// prefixed flags the token with a known prefix at run[off:], if any, and returns its length.
func (j *job) prefixed(run string, off, start int, flag func(rule string, sev schemas.Severity, start, end int)) int {
	sub := run[off:]
	if off > 0 && byteClass[run[off-1]]&bWord != 0 {
		return 0 // inside a word
	}
	for _, p := range secretPrefixes {
		if !strings.HasPrefix(sub, p.prefix) {
			continue
		}
		n := tokenLen(sub, p.rule == "jwt" || p.rule == "gcp_oauth_token" || p.rule == "sendgrid_key")
		if n-len(p.prefix) < p.min || (p.check != nil && !p.check(sub[:n])) {
			continue
		}
		flag(p.rule, p.sev, start+off, start+off+n)
		return n
	}
	if azureClientSecret(sub) {
		flag("azure_client_secret", schemas.SeverityHigh, start+off, start+off+40)
		return 40
	}
	return 0
}

// isSRIHash reports whether run is a subresource-integrity hash (sha512-…), as package
// lockfiles carry.
func isSRIHash(run string) bool {
	for _, p := range []string{"sha1-", "sha256-", "sha384-", "sha512-"} {
		if strings.HasPrefix(run, p) {
			return true
		}
	}
	return false
}

// tokenLen is the length of the token at the start of s: base64url characters (and dots).
func tokenLen(s string, dots bool) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if byteClass[c]&bB64 != 0 && c != '+' && c != '/' && c != '=' || dots && c == '.' {
			n++
			continue
		}
		break
	}
	return n
}

// azureClientSecret recognises Entra ID client secrets: three characters, a digit, "Q~", then
// 34 more.
func azureClientSecret(s string) bool {
	return len(s) >= 40 && s[4] == 'Q' && s[5] == '~' && s[3] >= '0' && s[3] <= '9'
}

// highEntropy reports whether s looks random: mixed case and digits, not hex (hashes, git
// SHAs and UUIDs are ids, not secrets), and close to the entropy of random characters.
func highEntropy(s string) bool {
	var lower, upper, digit, hexOnly = 0, 0, 0, true
	var counts [128]uint8
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z':
			upper++
		case c >= '0' && c <= '9':
			digit++
		}
		if !isHex(c) && c != '-' {
			hexOnly = false
		}
		if c < 128 && counts[c] < 255 {
			counts[c]++
		}
	}
	if hexOnly || lower == 0 || upper == 0 || digit == 0 {
		return false
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	// Random characters of a 62-letter alphabet reach about log2(len) for short strings.
	return h >= 0.85*math.Log2(math.Min(n, 62))
}
